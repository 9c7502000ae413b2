#!/usr/bin/env bash
# unreadable: a file and a directory that cannot be read (mode 000, backup
# run as an unprivileged user; as root, via setpriv as nobody) -> backup
# exits 3, names each path and the reason, still writes a snapshot that holds
# every other file and is marked incomplete (snapshots --json complete=false).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

D=$T/data
mkdir -p "$D/sub" "$D/locked"
for i in 1 2 3; do random_file "$D/sub/f$i" 1; done
echo "readable" > "$D/ok.txt"
echo "secret" > "$D/sub/secret"
echo "hidden" > "$D/locked/inside"

if is_root; then
    command -v setpriv >/dev/null || fail "setpriv (util-linux) is needed to drop privileges"
    U=65534
    chown -R "$U:$U" "$D"
    mkdir "$REPO"; chown "$U:$U" "$REPO"
    mkdir -p "$XDG_CACHE_HOME"; chown "$U:$U" "$XDG_CACHE_HOME"
    # The binary must be reachable by nobody.
    setpriv --reuid="$U" --regid="$U" --clear-groups test -x "$CAIRN" \
        || fail "$CAIRN is not executable by uid $U (its directories must be world-searchable)"
    as_user() { setpriv --reuid="$U" --regid="$U" --clear-groups -- "$@"; }
    say "running init and backup as uid $U via setpriv"
else
    as_user() { "$@"; }
fi
chmod 000 "$D/sub/secret" "$D/locked"

must init as_user "$CAIRN" -r "$REPO" init
run backup as_user "$CAIRN" -r "$REPO" backup "$D"
expect_rc backup 3 "backup with an unreadable file and directory"
mentions_fixed backup "$D/sub/secret" "the unreadable file"
mentions_fixed backup "$D/locked" "the unreadable directory"
mentions backup 'permission denied|not permitted|EACCES|EPERM' "the reason (permission denied)"

run backup_json as_user "$CAIRN" -r "$REPO" --json backup "$D"
expect_rc backup_json 3 "backup --json with unreadable entries"
json_lines backup_json
errs=$(jq_py backup_json "[json.dumps(m) for m in by('error')]")
grep -q -F -- "$D/sub/secret" <<< "$errs" || { show backup_json; fail "no JSON error message names $D/sub/secret"; }
grep -q -F -- "$D/locked" <<< "$errs" || { show backup_json; fail "no JSON error message names $D/locked"; }
ok "JSON error messages name both paths"
[[ $(summary_field backup_json complete) == 0 ]] || fail "backup --json summary: complete is not false"
[[ $(summary_field backup_json errors) -ge 2 ]] || fail "backup --json summary: errors < 2"
ok "summary: complete=false, errors >= 2"

must snaps cz --json snapshots
json_lines snaps
n=$(jq_py snaps "len(by('snapshot'))")
[[ $n -eq 2 ]] || { show snaps; fail "expected 2 snapshots, got $n"; }
incomplete=$(jq_py snaps "all(m.get('complete') is False for m in by('snapshot'))")
[[ $incomplete == 1 ]] || { show snaps; fail "snapshots --json: complete is not false for both snapshots"; }
ok "both snapshots exist and say complete=false"

# The snapshot holds everything else.
must restore cz restore "latest:$D" --target "$T/r"
for f in ok.txt sub/f1 sub/f2 sub/f3; do
    cmp "$D/$f" "$T/r/$f" || fail "restored $f differs or is missing"
done
[[ ! -e $T/r/sub/secret ]] || fail "the unreadable file was restored (with what content?)"
[[ ! -e $T/r/locked/inside ]] || fail "the unreadable directory's contents were restored"
ok "the snapshot holds every readable file and none of the unreadable ones"

# The restore side: a folder of the target that the user may not write
# into.  The restore names each entry it could not make there and why,
# restores everything else, prints its summary and exits 4 (documented:
# some files could not be restored), not 1 with "input/output error".
RT=$T/rt
mkdir -p "$RT/sub"
if is_root; then chown "$U:$U" "$RT"; fi
chmod 555 "$RT/sub"
run rpart as_user "$CAIRN" -r "$REPO" restore "latest:$D" --target "$RT"
chmod 755 "$RT/sub"
expect_rc rpart 4 "restore with a folder of the target not writable"
mentions_fixed rpart "$RT/sub/f1" "an entry it could not restore"
mentions rpart 'Permission denied' "the reason"
mentions rpart 'could not be restored .*named above; everything else was restored' "the summary of what failed"
mentions rpart '^restored [0-9]+ files' "the summary of what was restored"
cmp "$D/ok.txt" "$RT/ok.txt" || fail "ok.txt, outside the unwritable folder, was not restored"
ok "a partly unwritable target: the rest restored, each failure named, exit 4"
