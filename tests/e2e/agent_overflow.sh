#!/usr/bin/env bash
# agent_overflow: the watcher's limits.  (1) The inotify queue is made tiny
# (fs.inotify.max_queued_events = 16, root only) and 2000 files appear at
# once: the queue overflows, the agent rescans, and every file reaches the
# server.  (2) A watch limit of the agent's own (--max-watches 3) leaves
# most folders unwatched: they are polled, and a change deep inside one
# still reaches the server.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
is_root || { echo "agent_overflow needs root (fs.inotify.max_queued_events); skipped"; exit 77; }
source "$(dirname "$0")/agent_setup.sh"

Q=/proc/sys/fs/inotify/max_queued_events
OLDQ=$(cat "$Q")
trap 'echo "$OLDQ" > '"$Q"'; e2e_cleanup' EXIT
echo 16 > "$Q"
mkdir -p "$SEL/d"
printf x > "$SEL/d/first"
agent_config '"frequency": 0'
agent_start --watch inotify
wait_commit 0 60
wait_idle 30
echo "$OLDQ" > "$Q"   # the agent's instance keeps its tiny queue
n=$(commits)
for i in $(seq 1 2000); do printf '%d\n' "$i" > "$SEL/d/f$i"; done
wait_commit "$n" 60
wait_idle 60
latest_matches
grep -qi 'overflow\|rescan' "$T/agent.log" && say "the log mentions the overflow"
ok "queue overflow: all 2000 files reached the server"
agent_stop

# (2) the agent's own watch limit
rm -rf "$AGENT_STATE"
mkdir -p "$SEL/deep/a/b/c/d"
printf x > "$SEL/deep/a/b/c/d/leaf"
agent_start --watch inotify --max-watches 3
wait_commit "$(commits)" 60
wait_idle 60
n=$(commits)
printf 'changed where nobody watches\n' > "$SEL/deep/a/b/c/d/leaf2"
wait_commit "$n" 90
wait_idle 60
latest_matches
ok "watch limit: an unwatched folder is polled and its change backed up"
agent_stop
e2e_server_stop
