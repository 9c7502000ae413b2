#!/usr/bin/env bash
# secrets: passwords, TOTP secrets, recovery codes, session and device
# tokens, archive keys and the escrow passphrase never appear in what the
# server writes (issue 4).  A real cairnd on loopback with TLS, its log at
# debug level.  A busy scenario - logins right and wrong (password, TOTP,
# recovery code; CLI and API), enrolment of a personal and a shared
# device, backups and a restore through the server, restore requests
# filed and decided, a password reset and a login with the new password,
# a disabled account, wrong device tokens - then every secret the test
# knows is looked for in the server's log, the audit table (sqlite3 dump),
# every error body the test saw and every error message cairn printed.  A
# self-test plants a secret in a copy of the log and expects the grep to
# catch it.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

unset CAIRN_DEVICE_FILE CAIRN_SESSION_FILE CAIRN_SERVER CAIRN_SERVER_PIN \
      CAIRN_USERNAME CAIRN_LOGIN_PASSWORD_FILE CAIRN_TOTP_COMMAND \
      CAIRN_TOTP_FILE CAIRN_RECOVERY_CODE_FILE CAIRN_NEW_USER_PASSWORD_FILE
export HOME=$T/home XDG_CONFIG_HOME=$T/home/.config
mkdir -p "$HOME"

e2e_server_start
secret_add "$(head -n1 "$PW")" # the local archive's passphrase
ROOT=$(api_login root "$ROOT_PW_FILE" "$ROOT_TOTP")
api_dept Physics
api_user_add ana Physics
api_user_add carl Physics

ROOT_CLI=(env CAIRN_SESSION_FILE="$T/root.session" "$CAIRN")
ANA_CLI=(env CAIRN_SESSION_FILE="$T/ana.session" CAIRN_DEVICE_FILE="$T/ana-device.json" "$CAIRN")
CARL_CLI=(env CAIRN_SESSION_FILE="$T/carl.session" "$CAIRN")
LAB_CLI=(env CAIRN_SESSION_FILE="$T/root.session" CAIRN_DEVICE_FILE="$T/lab-device.json" "$CAIRN")
login_args() { # user pwfile
    echo "--server $URL --pin $PIN --username $1 --password-file $2"
}

# ------------------------------------------------------------ logins
# Wrong passwords (API, CLI), a wrong TOTP code, a wrong recovery code.
printf 'not ana password\n' > "$T/wrong.pw"
secret_add "not ana password"
api_expect 401 POST /api/v1/login --interface 127.0.0.2 \
    $(api_json '{"username":"ana","password":"not ana password"}')
# A password typed into the username field: an unknown name is never
# written down.
api_expect 401 POST /api/v1/login $(api_json "{\"username\":\"$(head -n1 "$T/ana.pw")\",\"password\":\"x\"}")
run badpw "${ANA_CLI[@]}" login $(login_args ana "$T/wrong.pw") --totp-command "$T/totp ana $(cat "$T/ana.totp")"
[[ $RC -ne 0 ]] || { show badpw; fail "a wrong password logged in"; }
run badtotp "${ANA_CLI[@]}" login $(login_args ana "$T/ana.pw") --totp-command "echo 123456"
[[ $RC -ne 0 ]] || { show badtotp; fail "a wrong TOTP code logged in"; }
P=$(api_partial ana "$T/ana.pw")
api_expect 401 POST /api/v1/login/totp $(api_bearer "$P") \
    $(api_json '{"recovery_code":"wrong-wrong-wrong"}')
api_expect 200 POST /api/v1/login/totp $(api_bearer "$P") \
    $(api_json "{\"recovery_code\":\"$(sed -n 2p "$T/ana.rec")\"}")
# The used code again: refused (and not echoed).
P2=$(api_partial ana "$T/ana.pw")
api_expect 401 POST /api/v1/login/totp $(api_bearer "$P2") \
    $(api_json "{\"recovery_code\":\"$(sed -n 2p "$T/ana.rec")\"}")
# Malformed bodies carrying secrets: the error names no value.
api_expect 400 POST /api/v1/login \
    $(api_json "{\"username\":\"ana\",\"password\":\"$(head -n1 "$T/ana.pw")\",\"extra\":1}")
api_expect 400 POST /api/v1/login/totp $(api_bearer "$P2") \
    $(api_json "{\"code\":\"$(cat "$T/ana.totp")\"}")
# Wrong and malformed tokens.
api_expect 401 GET /api/v1/me $(api_bearer "cs_$(cat "$T/ana.totp")not")
api_expect 401 GET /api/v1/me $(api_bearer "$P2")
must rootlogin "${ROOT_CLI[@]}" login $(login_args root "$ROOT_PW_FILE") --totp-command "$T/totp root $ROOT_TOTP"
must analogin "${ANA_CLI[@]}" login $(login_args ana "$T/ana.pw") --totp-command "$T/totp ana $(cat "$T/ana.totp")"
for f in "$T/root.session" "$T/ana.session"; do
    secret_add "$(jq -r .token "$f")"
done
ok "logins right and wrong"

# ------------------------------------------------------------ devices
must enrol "${ANA_CLI[@]}" enrol --server "$URL" --pin "$PIN" --password-file "$T/ana.pw" \
    --category personal --department Physics --name ana-laptop --json
secret_add "$(jq -r .token "$T/ana-device.json")" "$(jq -r .archive_key "$T/ana-device.json")"
must shared "${LAB_CLI[@]}" enrol --server "$URL" \
    --pin "$PIN" --category shared --department Physics --name lab-pc --json
secret_add "$(jq -r .token "$T/lab-device.json")" "$(jq -r .archive_key "$T/lab-device.json")"
LAB=$(jq -r .device_id "$T/lab-device.json")
ANAPC=$(jq -r .device_id "$T/ana-device.json")

mkdir -p "$T/src/docs"
for i in $(seq 10); do echo "file $i $RANDOM" > "$T/src/docs/f$i"; done
random_file "$T/src/big" 1
must backup1 "${ANA_CLI[@]}" backup "$T/src"
must backup2 "${LAB_CLI[@]}" backup "$T/src/docs"
must restore1 "${ANA_CLI[@]}" restore "latest:$T/src" --target "$T/restored"
treecmp "$T/src" "$T/restored"
# A device token with the right id and a wrong secret; a replayed token of
# another device.
api_expect 401 GET /api/v1/devices/$ANAPC/objects/pack $(api_bearer "cd_$ANAPC.$(jq -r .archive_key "$T/ana-device.json")")
api_expect 403 GET /api/v1/devices/$ANAPC/objects/pack $(api_bearer "$(jq -r .token "$T/lab-device.json")")
ok "enrolment, backups, a restore"

# ------------------------------------------------------------ requests
must req1 "${ANA_CLI[@]}" request new --device "$LAB" --path /srv/data --to desk \
    --reason "my password is in there, not telling" --json
R1=$(jq_py req1 "last['id']")
must req2 "${ANA_CLI[@]}" request new --device "$LAB" --path /srv/other --to desk --reason again --json
R2=$(jq_py req2 "last['id']")
run reqbad "${ANA_CLI[@]}" request new --device "$ANAPC" --path /x --to desk --reason why
[[ $RC -ne 0 ]] || fail "a request for a personal device"
must decl "${ROOT_CLI[@]}" admin requests decline "$R1" --reason "no"
must ful "${ROOT_CLI[@]}" admin requests fulfil "$R2" --how download
run twice "${ROOT_CLI[@]}" admin requests fulfil "$R2" --how download
[[ $RC -ne 0 ]] || fail "decided twice"
ok "restore requests"

# ------------------------------------------------------------ people
printf 'carl new password %s\n' "$RANDOM$RANDOM" > "$T/carl-new.pw"
secret_add "$(head -n1 "$T/carl-new.pw")"
must reset "${ROOT_CLI[@]}" admin user reset-password carl --password-file "$T/carl-new.pw"
run carlold "${CARL_CLI[@]}" login $(login_args carl "$T/carl.pw") --totp-command "$T/totp carl $(cat "$T/carl.totp")"
[[ $RC -ne 0 ]] || fail "the old password still works"
must carlnew "${CARL_CLI[@]}" login $(login_args carl "$T/carl-new.pw") --totp-command "$T/totp carl $(cat "$T/carl.totp")"
secret_add "$(jq -r .token "$T/carl.session")"
must disable "${ROOT_CLI[@]}" admin user disable carl
run carldis "${CARL_CLI[@]}" request list
[[ $RC -ne 0 ]] || fail "a disabled account's session still works"
run carldis2 "${CARL_CLI[@]}" login $(login_args carl "$T/carl-new.pw") --totp-command "$T/totp carl $(cat "$T/carl.totp")"
[[ $RC -ne 0 ]] || fail "a disabled account logged in"
must audit "${ROOT_CLI[@]}" admin audit --json --limit 10000
ok "password reset, disabled account"

# ------------------------------------------------------------ the grep
# What cairn printed as errors: the server's messages, in its words.
cat "$T"/*.err > "$T/cli-errors.txt"
[[ -s $T/cli-errors.txt ]] || fail "no error messages were captured"
# The audit log as the API shows it, too.
cp "$T/audit.out" "$T/audit-api.txt"
secrets_selftest "$STATE" "$SRV_LOG"
secrets_grep "$STATE" "$SRV_LOG" "$T/cli-errors.txt" "$T/audit-api.txt"
grep -q login_failed "$T/audit.dump" || fail "the audit dump has no failed login (wrong table?)"
e2e_server_stop
# After the stop: everything the server wrote, once more.
secrets_grep "$STATE" "$SRV_LOG" "$T/cli-errors.txt"
