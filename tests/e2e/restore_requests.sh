#!/usr/bin/env bash
# restore_requests: people ask the IT office to restore a shared device of
# their department (issue 4).  A real cairnd on loopback with TLS; ana and
# carl (Physics) and bob (Chemistry).  ana files requests for the Physics
# lab PC with `cairn request new` (and over the API); requests for a
# Chemistry device and for her own personal device are refused, each with
# its reason; malformed requests are refused field by field.  Each person
# sees only their own requests; the admin sees the queue (filters), declines
# one with a reason, fulfils two (download; push with its id); a request is
# decided once (409 after, API and CLI); the requester sees the outcome
# (`cairn request show/list`, --json).  Every act is in the audit log, and
# no secret is in anything the server wrote.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

unset CAIRN_DEVICE_FILE CAIRN_SESSION_FILE CAIRN_SERVER CAIRN_SERVER_PIN \
      CAIRN_USERNAME CAIRN_LOGIN_PASSWORD_FILE CAIRN_TOTP_COMMAND \
      CAIRN_TOTP_FILE CAIRN_RECOVERY_CODE_FILE
export HOME=$T/home XDG_CONFIG_HOME=$T/home/.config
mkdir -p "$HOME"

e2e_server_start
ROOT=$(api_login root "$ROOT_PW_FILE" "$ROOT_TOTP")
api_dept Physics
api_dept Chemistry
api_user_add ana Physics
api_user_add carl Physics
api_user_add bob Chemistry
ANA=$(api_login ana "$T/ana.pw" "$(cat "$T/ana.totp")")
CARL=$(api_login carl "$T/carl.pw" "$(cat "$T/carl.totp")")
BOB=$(api_login bob "$T/bob.pw" "$(cat "$T/bob.totp")")

read -r LAB _ < <(api_enrol "$ROOT" shared Physics lab-pc)
read -r CHEM _ < <(api_enrol "$ROOT" shared Chemistry chem-pc)
read -r ANAPC _ < <(api_enrol "$ANA" personal Physics ana-laptop)
[[ -n $LAB && -n $CHEM && -n $ANAPC ]] || fail "enrolment"
ok "devices: lab-pc $LAB (Physics, shared), chem-pc $CHEM, ana-laptop $ANAPC"

# The people's CLI sessions.
ANA_CLI=(env CAIRN_SESSION_FILE="$T/ana.session" "$CAIRN")
ROOT_CLI=(env CAIRN_SESSION_FILE="$T/root.session" "$CAIRN")
must analogin "${ANA_CLI[@]}" login --server "$URL" --pin "$PIN" --username ana \
    --password-file "$T/ana.pw" --totp-command "$T/totp ana $(cat "$T/ana.totp")"
must rootlogin "${ROOT_CLI[@]}" login --server "$URL" --pin "$PIN" --username root \
    --password-file "$ROOT_PW_FILE" --totp-command "$T/totp root $ROOT_TOTP"

# ------------------------------------------------------------ filing
must new1 "${ANA_CLI[@]}" request new --device "$LAB" --path /srv/lab/data \
    --path "/srv/lab/notes and more" --as-of 2026-11-20 --to "my desktop, room 2.14" \
    --reason "the folder was deleted on Monday" --json
json_lines new1
R1=$(jq_py new1 "last['id']")
[[ $(jq_py new1 "last['state'] == 'open' and last['device'] == '$LAB' and last['as_of'] == '2026-11-20T00:00:00Z' and last['paths'] == ['/srv/lab/data', '/srv/lab/notes and more'] and last['requester'] == 'ana' and last['department'] == 'Physics' and last['version'] is None") == 1 ]] \
    || { show new1; fail "request new --json fields"; }
must new2 "${ANA_CLI[@]}" request new --device "$LAB" --path /srv/lab/x \
    --version abcdef12 --to "lab-pc itself" --reason "overwritten"
mentions new2 "request [0-9]+ filed" "the new request's id"
R2=$(grep -oE 'request [0-9]+' "$T/new2.out" | head -n1 | cut -d' ' -f2)
api_expect 201 POST /api/v1/requests $(api_bearer "$CARL") \
    $(api_json "{\"device\":\"$LAB\",\"paths\":[\"/srv/lab/carl\"],\"destination\":\"carl's laptop\",\"reason\":\"lost\"}")
R3=$(jq -r .id "$T/body")
[[ $(jq -r .version "$T/body") == null && $(jq -r .as_of "$T/body") == null ]] \
    || fail "latest: $(cat "$T/body")"
ok "requests $R1, $R2 (ana, CLI) and $R3 (carl, API) filed for the lab PC"

# Another department's shared device; a personal device (its owner
# restores it directly); an unknown device.
run other "${ANA_CLI[@]}" request new --device "$CHEM" --path /x --to here --reason why
[[ $RC -ne 0 ]] || { show other; fail "a request for another department's device"; }
mentions other "another department" "why another department's device is refused"
api_expect 403 POST /api/v1/requests $(api_bearer "$BOB") \
    $(api_json "{\"device\":\"$LAB\",\"paths\":[\"/x\"],\"destination\":\"d\",\"reason\":\"r\"}")
run personal "${ANA_CLI[@]}" request new --device "$ANAPC" --path /home/ana --to here --reason why
[[ $RC -ne 0 ]] || { show personal; fail "a request for a personal device"; }
mentions personal "personal device.*(owner|restore)" "why a personal device needs no request"
api_expect 403 POST /api/v1/requests $(api_bearer "$ROOT") \
    $(api_json "{\"device\":\"$LAB\",\"paths\":[\"/x\"],\"destination\":\"d\",\"reason\":\"r\"}")
api_expect 404 POST /api/v1/requests $(api_bearer "$ANA") \
    $(api_json "{\"device\":\"$(printf '%032d' 7)\",\"paths\":[\"/x\"],\"destination\":\"d\",\"reason\":\"r\"}")
ok "refused: another department's device, a personal device, an unknown one"

# Every field is checked.
bad() { # JSON-fragment description
    api_expect 400 POST /api/v1/requests $(api_bearer "$ANA") $(api_json "$1")
    ok "refused: $2"
}
base="\"device\":\"$LAB\",\"destination\":\"d\",\"reason\":\"r\""
bad "{$base,\"paths\":[\"relative/path\"]}" "a relative path"
bad "{$base,\"paths\":[\"/a/../etc\"]}" "a path with .."
bad "{$base,\"paths\":[]}" "no paths"
bad "{$base,\"paths\":\"/a\"}" "paths not a list"
bad "{$base,\"paths\":[\"/a\\u0000b\"]}" "a NUL in a path"
bad "{$base,\"paths\":[$(python3 -c 'print(",".join(["\"/p\""] * 65))')]}" "65 paths"
bad "{$base,\"paths\":[\"/$(head -c 5000 /dev/zero | tr '\0' a)\"]}" "a path over 4096 bytes"
bad "{$base,\"paths\":[\"/a\"],\"version\":\"abc\",\"as_of\":\"2026-01-01T00:00:00Z\"}" "version and as_of"
bad "{$base,\"paths\":[\"/a\"],\"version\":\"not hex!\"}" "a malformed version"
bad "{$base,\"paths\":[\"/a\"],\"as_of\":\"yesterday\"}" "a malformed as_of"
bad "{\"device\":\"$LAB\",\"paths\":[\"/a\"],\"destination\":\"d\"}" "no reason"
bad "{\"device\":\"$LAB\",\"paths\":[\"/a\"],\"reason\":\"r\",\"destination\":\"\"}" "an empty destination"
bad "{\"device\":\"$LAB\",\"paths\":[\"/a\"],\"reason\":\"r\",\"destination\":\"$(head -c 300 /dev/zero | tr '\0' d)\"}" "a destination over 255 bytes"
bad "{\"device\":\"$LAB\",\"paths\":[\"/a\"],\"reason\":\"$(head -c 1001 /dev/zero | tr '\0' r)\",\"destination\":\"d\"}" "a reason over 1000 bytes"
bad "{\"device\":\"$LAB\",\"paths\":[\"/a\"],\"reason\":\"r\",\"destination\":\"a\\u0007b\"}" "a control character"
bad "{\"device\":\"LAB\",\"paths\":[\"/a\"],\"reason\":\"r\",\"destination\":\"d\"}" "a malformed device id"
bad "{$base,\"paths\":[\"/a\"],\"colour\":\"red\"}" "an unknown field"
run usage "${ANA_CLI[@]}" request new --device "$LAB" --path /a --to d
expect_rc usage 2 "request new without --reason"

# ------------------------------------------------------------ who sees what
must list1 "${ANA_CLI[@]}" request list --json
[[ $(jq_py list1 "sorted(m['id'] for m in by('request'))") == "$(printf '%s\n' "$R1" "$R2" | sort -n)" ]] \
    || { show list1; fail "ana's list is not her two requests"; }
[[ $(jq_py list1 "by('summary')[0]['count']") == 2 ]] || { show list1; fail "list summary"; }
api_expect 200 GET /api/v1/requests $(api_bearer "$CARL")
[[ $(jq -c '[.requests[].id]' "$T/body") == "[$R3]" ]] || fail "carl's list: $(cat "$T/body")"
api_expect 200 GET /api/v1/requests $(api_bearer "$BOB")
[[ $(jq '.requests | length' "$T/body") == 0 ]] || fail "bob sees requests"
api_expect 403 GET /api/v1/requests/$R3 $(api_bearer "$ANA")
api_expect 403 GET /api/v1/requests/$R1 $(api_bearer "$BOB")
api_expect 200 GET /api/v1/requests/$R1 $(api_bearer "$ANA")
api_expect 404 GET /api/v1/requests/999999 $(api_bearer "$ROOT")
api_expect 404 GET /api/v1/requests/x1 $(api_bearer "$ROOT")
api_expect 403 POST /api/v1/requests/$R1/decline $(api_bearer "$ANA") $(api_json '{"reason":"mine"}')
ok "each person sees their own requests only; only admins decide"

# The admin's queue.
must queue "${ROOT_CLI[@]}" admin requests --state open --json
[[ $(jq_py queue "len(by('request'))") == 3 ]] || { show queue; fail "the open queue"; }
must queue2 "${ROOT_CLI[@]}" admin requests --department Chemistry --json
[[ $(jq_py queue2 "len(by('request'))") == 0 ]] || { show queue2; fail "department filter"; }
api_expect 200 GET "/api/v1/requests?device=$LAB&department=Physics" $(api_bearer "$ROOT")
[[ $(jq '.requests | length' "$T/body") == 3 ]] || fail "device filter: $(cat "$T/body")"
api_expect 400 GET "/api/v1/requests?state=lost" $(api_bearer "$ROOT")
must queuetab "${ROOT_CLI[@]}" admin requests
mentions queuetab "carl's laptop" "the table"
ok "the admin sees the queue, with filters"

# ------------------------------------------------------------ deciding
run declnoreason "${ROOT_CLI[@]}" admin requests decline "$R1"
expect_rc declnoreason 2 "decline without --reason"
api_expect 400 POST /api/v1/requests/$R1/decline $(api_bearer "$ROOT") $(api_json '{}')
must decline "${ROOT_CLI[@]}" admin requests decline "$R1" \
    --reason "that folder is not in the backup selection" --json
[[ $(jq_py decline "last['state']") == declined ]] || { show decline; fail "declined"; }
must fulfil2 "${ROOT_CLI[@]}" admin requests fulfil "$R2" --how download \
    --note "sent you a link" --json
[[ $(jq_py fulfil2 "last['state'] + ' ' + last['how']") == "fulfilled download" ]] \
    || { show fulfil2; fail "fulfilled by download"; }
api_expect 400 POST /api/v1/requests/$R3/fulfil $(api_bearer "$ROOT") $(api_json '{"how":"email"}')
api_expect 400 POST /api/v1/requests/$R3/fulfil $(api_bearer "$ROOT") $(api_json '{"how":"download","push_id":3}')
api_expect 400 POST /api/v1/requests/$R3/fulfil $(api_bearer "$ROOT") $(api_json '{"how":"push","push_id":-3}')
# A push restore that does not exist does not fulfil anything (agent_push
# fulfils one with a real push restore).
api_expect 400 POST /api/v1/requests/$R3/fulfil $(api_bearer "$ROOT") $(api_json '{"how":"push","push_id":7}')
grep -q "no push restore 7" "$T/body" || fail "push_id 7: $(cat "$T/body")"
api_expect 200 GET /api/v1/requests/$R3 $(api_bearer "$ROOT")
[[ $(jq -r .state "$T/body") == open ]] || fail "a refused fulfilment changed the request: $(cat "$T/body")"
api_expect 200 POST /api/v1/requests/$R3/fulfil $(api_bearer "$ROOT") $(api_json '{"how":"push","note":"pushed by hand"}')
[[ $(jq -r '.how + " " + (.push_id|tostring)' "$T/body") == "push null" ]] || fail "fulfilled by push: $(cat "$T/body")"
ok "declined one with a reason, fulfilled two (download, push)"

# Decided once.
api_expect 409 POST /api/v1/requests/$R1/decline $(api_bearer "$ROOT") $(api_json '{"reason":"again"}')
api_expect 409 POST /api/v1/requests/$R1/fulfil $(api_bearer "$ROOT") $(api_json '{"how":"download"}')
api_expect 409 POST /api/v1/requests/$R2/decline $(api_bearer "$ROOT") $(api_json '{"reason":"changed my mind"}')
run twice "${ROOT_CLI[@]}" admin requests fulfil "$R1" --how push
[[ $RC -ne 0 ]] || { show twice; fail "a decided request was fulfilled"; }
mentions twice "decided already" "a request is decided once"
api_expect 200 GET /api/v1/requests/$R1 $(api_bearer "$ROOT")
[[ $(jq -r .state "$T/body") == declined && $(jq -r .outcome "$T/body") == "that folder is not in the backup selection" ]] \
    || fail "the first decision changed: $(cat "$T/body")"
ok "a request is decided once (409 after)"

# ------------------------------------------------------------ the outcome
must show1 "${ANA_CLI[@]}" request show "$R1" --json
[[ $(jq_py show1 "last['state'] == 'declined' and last['outcome'] == 'that folder is not in the backup selection' and last['decided_by'] == 'root' and last['decided_at'] is not None") == 1 ]] \
    || { show show1; fail "ana sees the decline"; }
must show1t "${ANA_CLI[@]}" request show "$R1"
mentions show1t "declined" "the state"
mentions show1t "not in the backup selection" "the decline reason"
must show2 "${ANA_CLI[@]}" request show "$R2"
mentions show2 "fulfilled" "the state"
mentions show2 "download: sent you a link" "how it was fulfilled"
must list2 "${ANA_CLI[@]}" request list --state open --json
[[ $(jq_py list2 "len(by('request'))") == 0 ]] || { show list2; fail "ana has no open request left"; }
run showother "${ANA_CLI[@]}" request show "$R3"
[[ $RC -ne 0 ]] || { show showother; fail "ana read carl's request"; }
ok "the requester sees the outcome"

# ------------------------------------------------------------ audited
audit_count() { # action [device]
    api_expect 200 GET "/api/v1/audit?action=$1${2:+&device=$2}" $(api_bearer "$ROOT")
    jq '.entries | length' "$T/body"
}
[[ $(audit_count request_filed "$LAB") == 3 ]] || fail "request_filed audit: $(cat "$T/body")"
[[ $(audit_count request_declined "$LAB") == 1 ]] || fail "request_declined audit"
[[ $(jq -r '.entries[0].user + " " + (.entries[0].detail.request|tostring)' "$T/body") == "root $R1" ]] \
    || fail "request_declined entry: $(cat "$T/body")"
[[ $(audit_count request_fulfilled) == 2 ]] || fail "request_fulfilled audit"
ok "filing and deciding are audited"

# ------------------------------------------------------------ secrets
secrets_grep "$STATE" "$SRV_LOG"
e2e_server_stop
