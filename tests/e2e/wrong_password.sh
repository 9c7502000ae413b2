#!/usr/bin/env bash
# wrong_password: wrong passphrase -> exit 12 with a clear message; no
# archive -> exit 10; no passphrase source and no terminal -> exit 1; bad
# usage -> exit 2; key add / key list / open with the new key; removing the
# key in use is refused; removing another key works and locks its
# passphrase out.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

D=$T/data
mkdir -p "$D"
echo hello > "$D/hello"
PW2=$T/password2
PWBAD=$T/password-bad
echo "a second, different passphrase" > "$PW2"
echo "not the passphrase" > "$PWBAD"

must init cz init
must backup cz backup "$D"

run wrong cz --password-file "$PWBAD" snapshots
expect_rc wrong 12 "snapshots with a wrong passphrase"
mentions wrong 'passphrase|password' "the passphrase"
run wrong_env env CAIRN_PASSWORD_FILE="$PWBAD" "$CAIRN" -r "$REPO" restore latest --target "$T/never"
expect_rc wrong_env 12 "restore with a wrong passphrase from CAIRN_PASSWORD_FILE"
[[ ! -e $T/never || -z $(ls -A "$T/never") ]] || fail "restore with a wrong passphrase wrote files"
# (CAIRN_PASSWORD_FILE is unset here: the CLI lets it win over --password-command)
run wrong_cmd env -u CAIRN_PASSWORD_FILE "$CAIRN" -r "$REPO" --password-command "echo nope" snapshots
expect_rc wrong_cmd 12 "--password-command giving a wrong passphrase"
run right_cmd env -u CAIRN_PASSWORD_FILE "$CAIRN" -r "$REPO" --password-command "cat '$PW'" snapshots
expect_rc right_cmd 0 "--password-command giving the right passphrase"

run noarchive "$CAIRN" -r "$T/nothing-here" snapshots
expect_rc noarchive 10 "snapshots on a path that does not exist"
mkdir "$T/empty-dir"
run noarchive2 "$CAIRN" -r "$T/empty-dir" snapshots
expect_rc noarchive2 10 "snapshots on an empty directory"

run nopass env -u CAIRN_PASSWORD_FILE setsid -w "$CAIRN" -r "$REPO" snapshots < /dev/null
expect_rc nopass 1 "no passphrase source and no terminal"

run usage cz frobnicate
expect_rc usage 2 "an unknown command"
run usage2 cz restore
expect_rc usage2 2 "restore without arguments"

# ---------------------------------------------------------------- keys
run keyadd cz key add --label second --new-password-file "$PW2"
expect_rc keyadd 0 "key add --label second"
run newkey cz --password-file "$PW2" snapshots
expect_rc newkey 0 "snapshots with the new passphrase"
must restore_newkey cz --password-file "$PW2" restore "latest:$D" --target "$T/r"
cmp "$D/hello" "$T/r/hello" || fail "restore with the new key: content differs"
ok "the new key opens the archive and restores"

must keylist cz key list
mentions_fixed keylist second "the label of the new key"
must keylist_json cz --json key list
json_lines keylist_json
nkeys=$(jq_py keylist_json "len(by('key'))")
[[ $nkeys -eq 2 ]] || { show keylist_json; fail "key list --json: $nkeys keys, expected 2"; }
id2=$(jq_py keylist_json "[m.get('id') for m in by('key') if m.get('label') == 'second']")
id1=$(jq_py keylist_json "[m.get('id') for m in by('key') if m.get('label') != 'second']")
[[ -n $id1 && -n $id2 && $id1 != None && $id2 != None ]] \
    || { show keylist_json; fail "key list --json: cannot tell the keys apart by id and label"; }
ok "key list: 2 keys ($id1, $id2 labelled 'second')"

run rm_current cz --password-file "$PW2" key remove "$id2"
[[ $RC -ne 0 ]] || fail "key remove of the key in use ($id2) was accepted"
mentions rm_current 'current|in use|used|own|opened|cannot remove|refus' "why it is refused"
ok "key remove of the key in use refused (exit $RC)"
run still cz --password-file "$PW2" snapshots
expect_rc still 0 "the refused key still opens the archive"

must rm_other cz --password-file "$PW2" key remove "$id1"
run old_gone cz --password-file "$PW" snapshots
expect_rc old_gone 12 "the removed key's passphrase"
must keylist2 cz --password-file "$PW2" --json key list
n=$(jq_py keylist2 "len(by('key'))")
[[ $n -eq 1 ]] || { show keylist2; fail "after key remove: $n keys, expected 1"; }
ok "after removing the first key: 1 key left, old passphrase refused"
