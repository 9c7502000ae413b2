#!/usr/bin/env bash
# audit: the append-only audit log (issue 4).  A real cairnd on loopback
# with TLS.  A series of acts - failed and good logins (with the address
# they came from), TOTP and recovery codes (right and wrong), departments
# and waves, people added, disabled, enabled, unlocked, their passwords
# reset, devices enrolled, re-categorised, their wraps read, the legacy
# service cancelled, a restore request filed and decided, a logout - and
# after each, the entry it must have made, read back with `cairn admin
# audit --json` and its filters (user, action, device, since, until,
# limit).  Bad filters are refused; only administrators read the log; the
# audit table refuses UPDATE and DELETE even from sqlite3 on the catalog
# file; no secret is in the log, the audit table or any error body.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

unset CAIRN_DEVICE_FILE CAIRN_SESSION_FILE CAIRN_SERVER CAIRN_SERVER_PIN \
      CAIRN_USERNAME CAIRN_LOGIN_PASSWORD_FILE CAIRN_TOTP_COMMAND \
      CAIRN_TOTP_FILE CAIRN_RECOVERY_CODE_FILE
export HOME=$T/home XDG_CONFIG_HOME=$T/home/.config
mkdir -p "$HOME"

e2e_server_start
ROOT_CLI=(env CAIRN_SESSION_FILE="$T/root.session" "$CAIRN")
must rootlogin "${ROOT_CLI[@]}" login --server "$URL" --pin "$PIN" --username root \
    --password-file "$ROOT_PW_FILE" --totp-command "$T/totp root $ROOT_TOTP"
ROOT=$(api_login root "$ROOT_PW_FILE" "$ROOT_TOTP")

# audit NAME ARGS...: `cairn admin audit --json ARGS` as run NAME.
audit() {
    local name=$1
    shift
    must "$name" "${ROOT_CLI[@]}" admin audit --json "$@"
    json_lines "$name"
}
# has NAME PYEXPR WHAT: some audit entry e of run NAME satisfies PYEXPR.
has() {
    [[ $(jq_py "$1" "any(($2) for e in by('audit'))") == 1 ]] \
        || { show "$1"; fail "no audit entry: $3"; }
    ok "audited: $3"
}
# count NAME: the number of entries.
count() { jq_py "$1" "len(by('audit'))"; }

# ------------------------------------------------------------ logins
wrong=$(api_json '{"username":"root","password":"not the password"}')
api_expect 401 POST /api/v1/login --interface 127.0.0.2 $wrong
api_expect 401 POST /api/v1/login --interface 127.0.0.3 \
    $(api_json '{"username":"nobody","password":"whatever it is"}')
audit a1 --action login_failed
has a1 "e['target'] == 'root' and e['user'] == 'root' and e['addr'] == '127.0.0.2' and e['detail']['known'] is True" \
    "a failed login of root from 127.0.0.2"
has a1 "e['target'] == '(unknown user)' and e['user'] is None and e['addr'] == '127.0.0.3' and e['detail']['known'] is False" \
    "a failed login of an unknown name from 127.0.0.3 (the name not written down)"
audit a2 --action login --user root
has a2 "e['addr'] == '127.0.0.1' and e['detail']['stage'] == 'password'" "root's password step"
audit a3 --action totp --user root
[[ $(count a3) -ge 2 ]] || { show a3; fail "root's two TOTP steps"; }
ok "audited: root's TOTP steps"

# ------------------------------------------------------------ organisation
api_dept Physics
api_expect 200 PATCH /api/v1/departments/Physics $(api_bearer "$ROOT") \
    $(api_json '{"wave_start":"2021-02-03T04:05:06Z"}')
audit a4 --action department_add
has a4 "e['target'] == 'Physics' and e['user'] == 'root'" "department added"
audit a5 --action department_wave
has a5 "e['target'] == 'Physics' and e['detail']['wave_start'] == 1612325106" "the wave moved"

api_user_add ana Physics
api_user_add bob Physics
audit a6 --action user_add
has a6 "e['target'] == 'ana' and e['detail']['role'] == 'user'" "ana added"
for act in disable enable unlock; do
    api_expect 200 POST /api/v1/users/bob/$act $(api_bearer "$ROOT")
    audit "u$act" --action "user_$act"
    has "u$act" "e['target'] == 'bob' and e['user'] == 'root'" "bob: $act"
done
printf 'bob new pw %s\n' "$RANDOM$RANDOM" > "$T/bob.pw"
secret_add "$(head -n1 "$T/bob.pw")"
api_expect 200 POST /api/v1/users/bob/reset-password $(api_bearer "$ROOT") \
    $(api_json "{\"password\":\"$(head -n1 "$T/bob.pw")\"}")
audit ureset --action user_reset-password
has ureset "e['target'] == 'bob' and e['detail'] == {}" "bob's password reset (nothing of it in the detail)"

# TOTP and recovery codes, right and wrong, for ana.
ANA=$(api_login ana "$T/ana.pw" "$(cat "$T/ana.totp")")
P=$(api_partial ana "$T/ana.pw")
api_expect 401 POST /api/v1/login/totp $(api_bearer "$P") $(api_json '{"recovery_code":"not-a-code-at-all"}')
api_expect 200 POST /api/v1/login/totp $(api_bearer "$P") \
    $(api_json "{\"recovery_code\":\"$(head -n1 "$T/ana.rec")\"}")
P2=$(api_partial ana "$T/ana.pw")
api_expect 401 POST /api/v1/login/totp $(api_bearer "$P2") $(api_json '{"code":"000000"}')
audit a7 --user ana
has a7 "e['action'] == 'totp'" "ana's TOTP"
has a7 "e['action'] == 'recovery_code' and e['detail']['left'] == 9" "ana's recovery code (9 left)"
has a7 "e['action'] == 'recovery_code_failed'" "a wrong recovery code"
has a7 "e['action'] == 'totp_failed'" "a wrong TOTP code"

# ------------------------------------------------------------ devices
read -r PC _ < <(api_enrol "$ANA" personal Physics ana-laptop)
read -r LAB _ < <(api_enrol "$ROOT" shared Physics lab-pc)
[[ -n $PC && -n $LAB ]] || fail "enrolment"
audit a8 --action device_enrol --device "$PC"
has a8 "e['user'] == 'ana' and e['target'] == 'ana-laptop' and e['detail']['category'] == 'personal'" "ana enrolled her laptop"
[[ $(count a8) == 1 ]] || { show a8; fail "the device filter"; }
api_expect 200 PATCH /api/v1/devices/$PC $(api_bearer "$ROOT") $(api_json '{"owner":"bob"}')
api_expect 200 PATCH /api/v1/devices/$LAB $(api_bearer "$ROOT") \
    $(api_json '{"category":"personal","owner":"ana"}')
api_expect 200 PATCH /api/v1/devices/$LAB $(api_bearer "$ROOT") $(api_json '{"category":"shared"}')
audit a9 --action device_patch --device "$LAB"
has a9 "e['detail']['category'] == 'personal' and e['detail']['was']['category'] == 'shared'" "lab-pc made personal (and what it was)"
has a9 "e['detail']['category'] == 'shared' and e['detail']['owner_id'] == 0 and e['detail']['was']['category'] == 'personal'" "lab-pc made shared again"
api_expect 200 POST /api/v1/devices/$PC/legacy-cancelled $(api_bearer "$ROOT")
audit a10 --action legacy_cancelled
has a10 "e['device'] == '$PC' and e['user'] == 'root'" "the legacy service cancelled"
api_expect 200 GET /api/v1/devices/$LAB/wraps $(api_bearer "$ROOT")
audit a11 --action device_wraps --device "$LAB"
has a11 "e['user'] == 'root' and e['detail']['escrow'] is True" "an admin read the escrow wrap"

# ------------------------------------------------------------ requests
api_expect 201 POST /api/v1/requests $(api_bearer "$ANA") \
    $(api_json "{\"device\":\"$LAB\",\"paths\":[\"/data\"],\"destination\":\"desk\",\"reason\":\"lost\"}")
REQ=$(jq -r .id "$T/body")
api_expect 200 POST /api/v1/requests/$REQ/decline $(api_bearer "$ROOT") $(api_json '{"reason":"no"}')
audit a12 --device "$LAB"
has a12 "e['action'] == 'request_filed' and e['user'] == 'ana' and e['detail']['request'] == $REQ" "the request filed"
has a12 "e['action'] == 'request_declined' and e['user'] == 'root' and e['detail']['request'] == $REQ" "the request declined"

# ------------------------------------------------------------ logout
api_expect 204 POST /api/v1/logout $(api_bearer "$ANA")
audit a13 --action logout --user ana
[[ $(count a13) == 1 ]] || { show a13; fail "ana's logout"; }
ok "audited: a logout"

# ------------------------------------------------------------ filters
audit f1 --limit 2
[[ $(count f1) == 2 ]] || { show f1; fail "--limit 2"; }
audit f2 --since "$(date -u -d '+1 hour' +%FT%TZ)"
[[ $(count f2) == 0 ]] || { show f2; fail "--since in the future"; }
audit f3 --until 2020-01-01
[[ $(count f3) == 0 ]] || { show f3; fail "--until in the past"; }
audit f4 --since "$(date -u -d '-1 hour' +%FT%TZ)" --until "$(date -u -d '+1 hour' +%FT%TZ)" --user ana
[[ $(count f4) -ge 1 && $(jq_py f4 "all(e['user'] == 'ana' for e in by('audit'))") == 1 ]] \
    || { show f4; fail "--user ana between --since and --until"; }
[[ $(jq_py f4 "by('summary')[0]['count'] == len(by('audit'))") == 1 ]] || { show f4; fail "summary count"; }
must table "${ROOT_CLI[@]}" admin audit --action user_add
mentions table "user_add" "the action"
mentions table "TIME +USER +ADDRESS +ACTION" "the table's header"
for q in "since=yesterday" "until=2026-13-01T00:00:00Z" "limit=0" "limit=10001" "limit=abc" \
         "device=xyz" "since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z"; do
    api_expect 400 GET "/api/v1/audit?$q" $(api_bearer "$ROOT")
done
api_expect 404 GET "/api/v1/audit?user=nobody" $(api_bearer "$ROOT")
api_expect 200 GET "/api/v1/audit?limit=10000" $(api_bearer "$ROOT")
ok "bad filters are refused"

# Only administrators read it.
BOB=$(api_login bob "$T/bob.pw" "$(cat "$T/bob.totp")")
api_expect 403 GET /api/v1/audit $(api_bearer "$BOB")
api_expect 401 GET /api/v1/audit
must boblogin env CAIRN_SESSION_FILE="$T/bob.session" "$CAIRN" login --server "$URL" --pin "$PIN" \
    --username bob --password-file "$T/bob.pw" --totp-command "$T/totp bob $(cat "$T/bob.totp")"
run bobaudit env CAIRN_SESSION_FILE="$T/bob.session" "$CAIRN" admin audit
[[ $RC -ne 0 ]] || { show bobaudit; fail "a user read the audit log"; }
mentions bobaudit "administrator" "who may read it"
ok "only administrators read the audit log"

# ------------------------------------------------------------ append-only
n0=$(sqlite3 -readonly "$STATE/catalog.db" "SELECT count(*) FROM audit")
[[ $n0 -gt 20 ]] || fail "only $n0 audit rows"
run upd sqlite3 "$STATE/catalog.db" "UPDATE audit SET action = 'nothing' WHERE id = 1"
[[ $RC -ne 0 ]] || fail "the audit table took an UPDATE"
mentions upd "append-only" "the trigger's refusal"
run del sqlite3 "$STATE/catalog.db" "DELETE FROM audit WHERE id = 1"
[[ $RC -ne 0 ]] || fail "the audit table took a DELETE"
run delall sqlite3 "$STATE/catalog.db" "DELETE FROM audit"
[[ $RC -ne 0 ]] || fail "the audit table took a DELETE of everything"
[[ $(sqlite3 -readonly "$STATE/catalog.db" "SELECT count(*) FROM audit WHERE id = 1 AND action != 'nothing'") == 1 ]] \
    || fail "audit row 1 changed"
n1=$(sqlite3 -readonly "$STATE/catalog.db" "SELECT count(*) FROM audit")
[[ $n1 -ge $n0 ]] || fail "audit rows went from $n0 to $n1"
ok "the audit table refuses UPDATE and DELETE"

# ------------------------------------------------------------ secrets
secrets_grep "$STATE" "$SRV_LOG"
e2e_server_stop
