#!/usr/bin/env bash
# agent_offline: the server goes away (stopped) while the agent runs.
# Changes made meanwhile stay queued (the status file shows them and the
# error), the agent retries with backoff, and once the server is back the
# queued changes are delivered without anyone doing anything.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/agent_setup.sh"

mkdir -p "$SEL/docs"
printf 'one\n' > "$SEL/docs/a"
agent_config '"frequency": 0'
agent_start --watch inotify
wait_commit 0 60
wait_idle 30
ok "first backup"

e2e_server_stop
n=$(commits)
printf 'written while the server is away\n' > "$SEL/docs/offline"
rm "$SEL/docs/a"
for _ in $(seq 1 100); do
    jq -e '.files_todo > 0 and .last_error != ""' "$AGENT_STATE/status.json" >/dev/null 2>&1 && break
    sleep 0.5
done
jq -e '.files_todo > 0 and .last_error != ""' "$AGENT_STATE/status.json" >/dev/null \
    || { cat "$AGENT_STATE/status.json" >&2; tail "$T/agent.log" >&2; fail "status: no queued change and error while the server is away"; }
(( $(commits) == n )) || fail "a snapshot was committed with no server"
ok "server away: changes queued ($(jq .files_todo "$AGENT_STATE/status.json")), error shown: $(jq -r .last_error "$AGENT_STATE/status.json")"

sleep 3
server_restart
wait_commit "$n" 120
wait_idle 60
latest_matches
ok "server back: the queued changes were delivered"
agent_stop
e2e_server_stop
