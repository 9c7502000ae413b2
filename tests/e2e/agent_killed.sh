#!/usr/bin/env bash
# agent_killed: cairn-agent is killed with SIGKILL in the middle of its first
# upload (bandwidth-capped so the kill lands mid-way), then started again.
# It completes the backup, the result is exact, and what the server had
# acknowledged before the kill is not sent again: the second run sends the
# tree minus the packs already stored (cairn_bytes_in_total on /metrics),
# so all in all the server received the tree plus at most the packs that
# were in flight (two: the writer has two lanes, and while one uploads a
# pack the other fills the next).  The agent runs as it would as root: the watcher is the
# default (fanotify on the whole file system where the kernel allows it,
# else inotify).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/agent_setup.sh"

for i in 1 2 3 4 5 6; do random_file "$SEL/blob$i" 16; done
mkdir -p "$SEL/small"
for i in $(seq 1 50); do printf 'small %d\n' "$i" > "$SEL/small/s$i"; done
TREE=$(du -sb --apparent-size "$SEL" | awk '{print $1}')
# 16 MiB a second: the 96 MiB take about 6 s.  The kill comes after 48 MiB
# are stored: sending them again would show above what two packs in
# flight (at most 18 MiB each) can explain.
agent_config '"frequency": 0, "bandwidth_limit": 16777216, "cpu_share": 100'
IN0=$(metric cairn_bytes_in_total); IN0=${IN0%.*}
agent_start
for _ in $(seq 1 300); do
    [[ $(stored_bytes) -gt $(( 48 * 1048576 )) ]] && break
    sleep 0.05
done
STORED=$(stored_bytes)
(( STORED > 48 * 1048576 )) || fail "the agent stored only $STORED bytes"
kill -KILL "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null || true
(( $(commits) == 0 )) || fail "the backup finished before the kill; raise the data size"
IN1=$(metric cairn_bytes_in_total); IN1=${IN1%.*}
say "killed with $STORED bytes stored, $(( IN1 - IN0 )) received"
grep -m1 watching "$T/agent.log" >&2

agent_start
wait_commit 0 120
wait_idle 60
latest_matches
IN2=$(metric cairn_bytes_in_total); IN2=${IN2%.*}
RESENT=$(( IN2 - IN0 - TREE ))
say "tree $TREE bytes; received in all $(( IN2 - IN0 )); beyond the tree $RESENT"
# The packs in flight at the kill (two at most, about 16 MiB each) may come
# again, and metadata; nothing stored before the kill does.
(( RESENT < 40 * 1048576 )) || fail "the server received $RESENT bytes more than the tree"
(( IN2 - IN1 < TREE - STORED + 40 * 1048576 )) || fail "the restarted agent sent again what was stored"
ok "killed mid-upload, restarted: complete, nothing stored was sent again"
agent_stop
e2e_server_stop
