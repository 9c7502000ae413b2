#!/usr/bin/env bash
# agent_push: a restore request fulfilled by a push restore that the target
# computer's cairn-agent carries out.  A shared lab computer (lab-pc) is
# backed up; ana, of the same department, files a request for one of its
# folders to be put on the replacement computer (lab-pc-2, running
# cairn-agent); the admin pushes that folder onto lab-pc-2 with the escrow
# passphrase (`cairn push --request`), the agent there fetches the job,
# restores the files (compared with the source) and reports it done; the
# admin closes the request as fulfilled by that push; ana sees the outcome.
# A second request is declined with a reason.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/agent_setup.sh"
# agent_setup enrolled this computer as lab-pc ($DEVFILE, $DEV) in Labs.

SRC=$T/labdata
mkdir -p "$SRC/results/run1" "$SRC/other"
for i in $(seq 1 20); do head -c $(( RANDOM * 3 )) /dev/urandom > "$SRC/results/run1/r$i.dat"; done
printf 'notes\n' > "$SRC/results/notes.txt"; chmod 0640 "$SRC/results/notes.txt"
printf 'other\n' > "$SRC/other/o.txt"
must backup dev_cairn backup "$SRC"

# lab-pc-2, the replacement, with its own device file and agent.
DEVFILE2=$T/device2.json
must enrol2 env CAIRN_DEVICE_FILE="$DEVFILE2" "$CAIRN" enrol --server "$URL" \
    --pin "$PIN" --category shared --department Labs --name lab-pc-2 --json
DEV2=$(jq -r 'select(.device_id) | .device_id' "$T/enrol2.out" | tail -n1)
mkdir -p "$T/sel2"
printf '{"paths": ["%s"], "settle": 1, "frequency": 0}\n' "$T/sel2" > "$T/agent2.json"
"$CAIRN_AGENT" --config "$T/agent2.json" --device-file "$DEVFILE2" \
    --state-dir "$T/agent2-state" --watch inotify --push-poll 1 -v >> "$T/agent.log" 2>&1 &
AGENT_PID=$!
E2E_PIDS+=("$AGENT_PID")

# ana asks.
ROOT=$(api_login root "$ROOT_PW_FILE" "$ROOT_TOTP")
api_user_add ana Labs
ANA_ENV=(env CAIRN_SESSION_FILE="$T/ana.session")
must analogin "${ANA_ENV[@]}" "$CAIRN" login --server "$URL" --pin "$PIN" \
    --username ana --password-file "$T/ana.pw" --totp-command "$T/totp ana $(cat "$T/ana.totp")"
must req1 "${ANA_ENV[@]}" "$CAIRN" --json request new --device "$DEV" \
    --path "$SRC/results" --to "lab-pc-2, $T/pushed" --reason "lab-pc died"
R1=$(jq -r 'select(.message_type == "request") | .id' "$T/req1.out")
must req2 "${ANA_ENV[@]}" "$CAIRN" --json request new --device "$DEV" \
    --path "$SRC/other" --to "my laptop" --reason "want it"
R2=$(jq -r 'select(.message_type == "request") | .id' "$T/req2.out")

# The admin pushes and closes the first, declines the second.
must push "$CAIRN" --json push --from "$DEV" "latest:$SRC/results" --to "$DEV2" \
    --target "$T/pushed" --request "$R1" --escrow-passphrase-file "$ESCROW_PW_FILE"
PID=$(jq -r 'select(.message_type == "push") | .push_id' "$T/push.out")
[[ -n $PID && $PID != null ]] || { show push; fail "no push id"; }
for _ in $(seq 1 300); do
    api_expect 200 GET "/api/v1/push?device=$DEV2" $(api_bearer "$ROOT")
    jq -e --arg p "$PID" '(if type == "array" then . else .jobs end)[] | select((.push_id|tostring) == $p) | select(.state == "done")' "$T/body" >/dev/null 2>&1 && break
    sleep 0.5
done
jq -e --arg p "$PID" '(if type == "array" then . else .jobs end)[] | select((.push_id|tostring) == $p) | select(.state == "done")' "$T/body" >/dev/null \
    || { cat "$T/body" >&2; tail -n 20 "$T/agent.log" >&2; fail "the push restore did not finish"; }
treecmp "$SRC/results" "$T/pushed"
ok "the agent on lab-pc-2 carried out push restore $PID"

# A push restore fulfils only the request it was made for, and a push
# restore is made only for an open request of its source device.
run wrongreq "$CAIRN" admin requests fulfil "$R2" --how push --push-id "$PID"
[[ $RC -ne 0 ]] || { show wrongreq; fail "push $PID fulfilled request $R2"; }
mentions wrongreq "made for request $R1" "the push's own request"
WK=$(printf 'not a key' | base64)
api_expect 400 POST /api/v1/push $(api_bearer "$ROOT") $(api_json "{\"source_device\":\"$DEV\",\"target_device\":\"$DEV2\",\"paths\":[\"$SRC\"],\"target_dir\":\"$T/x\",\"wrapped_key\":\"$WK\",\"request_id\":999999}")
grep -q "no restore request 999999" "$T/body" || fail "push for no request: $(cat "$T/body")"
must fulfil "$CAIRN" admin requests fulfil "$R1" --how push --push-id "$PID" --note "on lab-pc-2"
must decline "$CAIRN" admin requests decline "$R2" --reason "personal copies are not made"
api_expect 409 POST /api/v1/push $(api_bearer "$ROOT") $(api_json "{\"source_device\":\"$DEV\",\"target_device\":\"$DEV2\",\"paths\":[\"$SRC\"],\"target_dir\":\"$T/x\",\"wrapped_key\":\"$WK\",\"request_id\":$R2}")
grep -q "decided already" "$T/body" || fail "push for a decided request: $(cat "$T/body")"
must show1 "${ANA_ENV[@]}" "$CAIRN" --json request show "$R1"
jq -e 'select(.message_type == "request") | .state == "fulfilled" and .how == "push"' "$T/show1.out" >/dev/null \
    || { show show1; fail "ana does not see request $R1 fulfilled"; }
must show2 "${ANA_ENV[@]}" "$CAIRN" --json request show "$R2"
jq -e 'select(.message_type == "request") | .state == "declined" and (.outcome | test("personal copies"))' "$T/show2.out" >/dev/null \
    || { show show2; fail "ana does not see request $R2 declined with its reason"; }
ok "requests: one fulfilled by the push restore, one declined; ana sees both"

agent_stop
secrets_grep "$STATE" "$SRV_LOG"
e2e_server_stop
