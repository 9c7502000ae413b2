#!/usr/bin/env bash
# agent_pause: `cairn status --pause 1h` stops new backups (changes stay
# queued and the status says until when), `cairn status --resume` lets the
# queued changes go out.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/agent_setup.sh"

printf 'one\n' > "$SEL/a"
agent_config '"frequency": 0'
agent_start --watch inotify
wait_commit 0 60
wait_idle 30

must pause dev_cairn status --agent-state "$AGENT_STATE" --pause 1h --json
until_=$(jq -r 'select(.message_type == "pause") | .paused_until' "$T/pause.out")
(( until_ > $(date +%s) + 3500 )) || fail "pause: until $until_"
for _ in $(seq 1 50); do
    jq -e '.paused_until > 0' "$AGENT_STATE/status.json" >/dev/null 2>&1 && break
    sleep 0.2
done
jq -e ".paused_until == $until_" "$AGENT_STATE/status.json" >/dev/null \
    || { cat "$AGENT_STATE/status.json" >&2; fail "the agent did not take the pause"; }
n=$(commits)
printf 'changed while paused\n' > "$SEL/b"
sleep 8
(( $(commits) == n )) || fail "a snapshot was made while paused"
jq -e '.files_todo > 0' "$AGENT_STATE/status.json" >/dev/null || fail "the change is not queued"
ok "paused: the change waits"

must resume dev_cairn status --agent-state "$AGENT_STATE" --resume
wait_commit "$n" 30
wait_idle 30
latest_matches
ok "resumed: the change went out"
agent_stop
e2e_server_stop
