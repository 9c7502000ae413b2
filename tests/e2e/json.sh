#!/usr/bin/env bash
# json: every command with --json writes only JSON objects, one per line,
# each with a message_type; backup, restore and check end with a summary;
# the typed messages (snapshot, entry, change, key, problem, error) appear
# where CLI.md says; failures keep stdout valid JSON too.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

D=$T/data
mkdir -p "$D/sub"
for i in 1 2 3; do random_file "$D/sub/r$i" 1; done
for i in 1 2 3 4 5; do seq 1 $((i * 1000)) > "$D/t$i.txt"; done
ln -s t1.txt "$D/link"
echo "not utf-8" > "$D/$(printf 'latin1-\xe9')"
PW2=$T/password2
echo "second passphrase" > "$PW2"

# jcmd NAME WANT_RC CMD...: run with --json (already in CMD), check the exit
# code and that stdout is JSON lines; print the message types seen.
jcmd() {
    local name=$1 want=$2
    shift 2
    run "$name" "$@"
    expect_rc "$name" "$want" "$name (--json)"
    json_lines "$name"
    say "$name: $(wc -l < "$T/$name.out") lines, types: $(jq_py "$name" "','.join(sorted(set(m['message_type'] for m in msgs)))")"
}
# ends_with_summary NAME
ends_with_summary() {
    [[ $(jq_py "$1" "last.get('message_type') == 'summary'") == 1 ]] \
        || { show "$1"; fail "$1: the last JSON line is not a summary"; }
    [[ $(jq_py "$1" "len(by('summary'))") -eq 1 ]] || { show "$1"; fail "$1: more than one summary"; }
    ok "$1 ends with one summary"
}
# has NAME TYPE MIN: at least MIN messages of TYPE
has() {
    local n
    n=$(jq_py "$1" "len(by('$2'))")
    [[ $n -ge $3 ]] || { show "$1"; fail "$1: $n '$2' messages, expected at least $3"; }
    ok "$1: $n '$2' message(s)"
}

jcmd init 0 cz --json init
jcmd backup1 0 cz --json backup "$D"
ends_with_summary backup1
for k in files bytes bytes_read files_new files_unchanged complete; do
    [[ $(jq_py backup1 "'$k' in last") == 1 ]] || { show backup1; fail "backup summary lacks '$k'"; }
done
ok "backup summary has files, bytes, bytes_read, files_new, files_unchanged, complete"
# files, and so files_new, count every entry that is not a folder: 3 + 5 + 1
# regular files and 1 symlink.
[[ $(summary_field backup1 files_new) -eq 10 ]] || fail "backup summary: files_new != 10 (3 + 5 + 1 regular files, 1 symlink)"
[[ $(summary_field backup1 files_new) -eq $(summary_field backup1 files) ]] || fail "backup summary: files_new != files on a first backup"
echo "new" > "$D/new.txt"
rm "$D/t5.txt"
echo "also not utf-8" > "$D/sub/$(printf 'new-\xff')"
jcmd backup2 0 cz --json backup "$D"
ends_with_summary backup2

jcmd snapshots 0 cz --json snapshots
has snapshots snapshot 2
for k in id time paths complete; do
    [[ $(jq_py snapshots "all('$k' in m for m in by('snapshot'))") == 1 ]] \
        || { show snapshots; fail "snapshot messages lack '$k'"; }
done
ok "snapshot messages carry id, time, paths, complete"
mapfile -t ids < <(jq_py snapshots "[m['id'] for m in by('snapshot')]")

jcmd ls 0 cz --json ls latest "$D"
has ls entry 8
# --json must not lose what the text output shows (e.g. names that are not UTF-8)
same_count() {  # same_count JSON_RUN TYPE TEXT_RUN GREP_RE
    local nj nt
    nj=$(jq_py "$1" "len(by('$2'))")
    nt=$(grep -a -c -E "$4" "$T/$3.out" || true)
    [[ $nj -eq $nt ]] || { show "$1"; show "$3"; fail "$1: $nj '$2' messages but the text output has $nt lines"; }
    ok "$1: as many '$2' messages as text lines ($nj)"
}
run ls_text cz ls latest "$D"
same_count ls entry ls_text '^/'
jcmd ls_l 0 cz --json ls latest "$D" -l
jcmd ls_r 0 cz --json ls latest "$D" -R
has ls_r entry 12
run ls_r_text cz ls latest "$D" -R
same_count ls_r entry ls_r_text '^/'

jcmd diff 0 cz --json diff "${ids[0]}" "${ids[1]}"
has diff change 2
grep -q -F "new.txt" "$T/diff.out" || fail "diff --json does not mention new.txt"
grep -q -F "t5.txt" "$T/diff.out" || fail "diff --json does not mention t5.txt"
ok "diff --json names the added and the removed file"
run diff_text cz diff "${ids[0]}" "${ids[1]}"
same_count diff change diff_text '^[-+MUT] '

jcmd restore 0 cz --json restore "latest:$D" --target "$T/r"
ends_with_summary restore
jcmd restore_verify 0 cz --json restore "latest:$D" --target "$T/r2" --verify
ends_with_summary restore_verify
treecmp "$D" "$T/r2"

jcmd check 0 cz --json check
ends_with_summary check
jcmd check_data 0 cz --json check --read-data
ends_with_summary check_data
jcmd check_subset 0 cz --json check --read-data-subset 50%
ends_with_summary check_subset
jcmd stats 0 cz --json stats

jcmd key_add 0 cz --json key add --label two --new-password-file "$PW2"
jcmd key_list 0 cz --json key list
has key_list key 2

# failures keep stdout JSON
echo "wrong" > "$T/badpw"
jcmd wrongpw 12 cz --json --password-file "$T/badpw" snapshots
jcmd noarchive 10 "$CAIRN" -r "$T/nothing" --json snapshots

say "damaging a pack to see problem and error messages"
REPO2=$T/damaged
cp -a "$REPO" "$REPO2"
P=$(cd "$REPO2" && find data -type f ! -name '.*' -printf '%s %p\n' | sort -rn | sed -n '1s/^[^ ]* //p')
[[ -n $P ]] || fail "no pack found under data/"
python3 - "$REPO2/$P" <<'PY'
import os, sys
p = sys.argv[1]
os.chmod(p, 0o644)
n = os.path.getsize(p)
with open(p, "r+b") as f:
    f.seek(n // 2)
    b = f.read(1)
    f.seek(n // 2)
    f.write(bytes([b[0] ^ 1]))
PY
jcmd check_bad 4 "$CAIRN" -r "$REPO2" --json check --read-data
has check_bad problem 1
ends_with_summary check_bad
jcmd restore_bad 4 "$CAIRN" -r "$REPO2" --json restore "latest:$D" --target "$T/r3"
# the damaged file is named by an error (or problem) message with its path
np=$(jq_py restore_bad "len([m for m in by('error') + by('problem') if str(m.get('path', '')).startswith('$D/')])")
[[ $np -ge 1 ]] || { show restore_bad; fail "restore_bad: no error/problem message names a damaged file's path"; }
ok "restore_bad: $np message(s) name a damaged file"
ends_with_summary restore_bad

jcmd version 0 cz --json version
