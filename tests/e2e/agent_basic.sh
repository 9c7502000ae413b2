#!/usr/bin/env bash
# agent_basic: cairn-agent against a real cairnd.  It backs up the selection
# at start, then every change — a new file, a changed one, a renamed one, a
# deleted one, a new folder tree, a mode change — reaches a new snapshot on
# the server within a bounded time, with only the changed paths looked at
# again; a file still being written is read once it has settled; nothing
# changing means no new snapshot and no CPU; `cairn status` shows the
# agent's state; SIGTERM stops it cleanly.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/agent_setup.sh"

mkdir -p "$SEL/docs/deep" "$SEL/photos"
for i in $(seq 1 30); do head -c $(( RANDOM * 4 )) /dev/urandom > "$SEL/docs/f$i"; done
random_file "$SEL/photos/big.bin" 3
printf 'deep\n' > "$SEL/docs/deep/note"
for i in $(seq 1 40); do mkdir -p "$SEL/many/d$i"; printf '%d\n' "$i" > "$SEL/many/d$i/f"; done
agent_config '"frequency": 0'
# inotify, as an agent without root runs; agent_killed runs the privileged
# default (fanotify on the whole file system, where it works).
agent_start --watch inotify
wait_commit 0 60
wait_idle 30
latest_matches
ok "first backup of the selection"

# A new file, a change, a rename, a deletion, a new folder tree, a chmod:
# each reaches a snapshot within seconds.
step() { # step NAME COMMAND...: run it, wait for the next commit, compare
    local n
    n=$(commits)
    eval "${@:2}"
    wait_commit "$n" 20
    wait_idle 30
    latest_matches
    ok "$1 reached the server"
}
step "a new file" 'printf "hello\n" > "$SEL/docs/new.txt"'
step "a changed file" 'printf "more\n" >> "$SEL/docs/f3"'
step "a rename" 'mv "$SEL/docs/f4" "$SEL/docs/f4-renamed"'
step "a deletion" 'rm "$SEL/docs/f5"'
step "a new folder tree" 'mkdir -p "$SEL/new/a/b/c" && printf x > "$SEL/new/a/b/c/leaf"'
step "a mode change" 'chmod 0600 "$SEL/docs/f6"'
step "a folder moved away" 'mv "$SEL/new" "$T/moved-out"'
step "a folder moved in" 'mv "$T/moved-out" "$SEL/back"'

# The changes were backed up by targeted runs: a change listed the folders
# on its path (up to /, as snapshots hold absolute paths), not the 48 of
# the selection.
n=$(commits)
printf 'one more\n' > "$SEL/many/d7/g"
wait_commit "$n" 20
last=$(grep 'committed snapshot' "$T/agent.log" | tail -n 1)
listed=$(sed -E 's/.* ([0-9]+) dirs listed.*/\1/' <<< "$last")
depth=$(tr -cd / <<< "$SEL/many/d7" | wc -c)
(( listed <= depth + 1 )) || fail "a change in one folder listed $listed folders: $last"
ok "changes are backed up by targeted runs ($listed folders listed)"

# A file being written is read when it settles: its final content is what
# gets backed up.
n=$(commits)
( for i in $(seq 1 10); do head -c 100000 /dev/urandom >> "$SEL/growing"; sleep 0.2; done ) &
wait $!
wait_commit "$n" 20
wait_idle 30
latest_matches
ok "a file written over 2 s is backed up whole"

# Nothing changes: no new snapshot, and the agent uses (almost) no CPU
# (it sleeps in poll; CPU ticks are 1/100 s).
n=$(commits)
t0=$(awk '{print $14 + $15}' "/proc/$AGENT_PID/stat")
sleep 6
t1=$(awk '{print $14 + $15}' "/proc/$AGENT_PID/stat")
[[ $(commits) -eq $n ]] || fail "a snapshot was made with nothing changed"
grep -m1 'watching' "$T/agent.log" >&2
(( t1 - t0 <= 5 )) || fail "the idle agent used $(( t1 - t0 )) ticks of CPU in 6 s"
ok "idle: no snapshot, $(( t1 - t0 )) CPU ticks in 6 s"

# cairn status shows the agent's state.
must status dev_cairn status --agent-state "$AGENT_STATE" --json
jq -e 'select(.message_type == "agent") | .files_todo == 0 and .last_backup > 0 and (.stale | not)' "$T/status.out" > /dev/null \
    || { show status; fail "cairn status --json: the agent's state"; }

agent_stop
ok "agent stopped cleanly"
must stopped dev_cairn status --agent-state "$AGENT_STATE"
mentions stopped "phase +stopped" "that the agent stopped"
grep -q "not running" "$T/stopped.out" && { show stopped; fail "a cleanly stopped agent is called not running"; }

# A status file an agent left without stopping (killed, crashed, or its
# disk full), last written 10 minutes ago: cairn status must not present
# it as current.
cp "$AGENT_STATE/status.json" "$T/status.saved"
jq --argjson t "$(( $(date +%s) - 600 ))" '.phase = "idle" | .updated = $t' \
    "$T/status.saved" > "$AGENT_STATE/status.json"
must stale dev_cairn status --agent-state "$AGENT_STATE"
mentions stale "not running\\? its status was last written 10 min ago" "that the agent's status is old"
must stalej dev_cairn status --agent-state "$AGENT_STATE" --json
jq -e 'select(.message_type == "agent") | .stale == true and .stale_secs >= 600' "$T/stalej.out" > /dev/null \
    || { show stalej; fail "cairn status --json does not mark the old status stale"; }
cp "$T/status.saved" "$AGENT_STATE/status.json"
ok "cairn status tells a stopped agent and an agent that is not running from a running one"

# Started again: it catches up on what changed while it was stopped, and
# reads no index object from the server (its local copy has them all).
nidx=$(grep -c 'GET /api/v1/devices/[0-9a-f]*/objects/index/' "$SRV_LOG" || true)
printf 'while the agent was stopped\n' > "$SEL/docs/offline-edit"
n=$(commits)
agent_start --watch inotify
wait_commit "$n" 30
wait_idle 30
(( $(grep -c 'GET /api/v1/devices/[0-9a-f]*/objects/index/' "$SRV_LOG" || true) == nidx )) \
    || fail "the restarted agent fetched index objects again"
latest_matches
ok "restart: the change made while stopped is backed up; no index object fetched again"
agent_stop
e2e_server_stop
