#!/usr/bin/env bash
# agent_localfull: the agent's own state folder fills up.
#
# cairn-agent's state folder is a 600 KB tmpfs; the selection holds 6,000
# small files, so the to-do list and the local copies of index objects
# fill it.  The agent stays up and still commits its backup (its local
# copies are best effort; the archive is on the server), says once that
# it cannot write its status file (not every few seconds), and once the
# folder has room again writes it again (and says so), showing the
# backup.  Needs root (mount).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

is_root || fail "agent_localfull needs root to mount a tmpfs (run the e2e suite as root)"
source "$(dirname "$0")/agent_setup.sh"
mkdir -p "$AGENT_STATE"
mount -t tmpfs -o size=600k,mode=0700 tmpfs "$AGENT_STATE" 2>"$T/mount.err" \
    || fail "cannot mount a 600 KB tmpfs at $AGENT_STATE: $(cat "$T/mount.err")"
E2E_MOUNTS+=("$AGENT_STATE")

for d in $(seq 1 20); do
    mkdir -p "$SEL/d$d"
    for f in $(seq 1 300); do
        echo "$d $f" > "$SEL/d$d/a-file-with-a-rather-long-name-$f.txt"
    done
done
agent_config '"frequency": 0'
agent_start
wait_commit 0 60
sleep 12   # a dozen status writes at least
kill -0 "$AGENT_PID" 2>/dev/null || { tail -n 30 "$T/agent.log" >&2; fail "cairn-agent died when its folder filled"; }
NWARN=$(grep -c "cannot write .*status.json" "$T/agent.log" || true)
say "state folder: $(df -k --output=avail "$AGENT_STATE" | tail -n 1 | tr -d ' ') KiB free; $NWARN warning(s) about the status file"
(( NWARN >= 1 )) || { tail -n 20 "$T/agent.log" >&2; fail "the folder did not fill (no warning): test inconclusive"; }
(( NWARN == 1 )) || { tail -n 20 "$T/agent.log" >&2; fail "the agent warned $NWARN times in a few seconds about its status file"; }
latest_matches
ok "with its folder full the agent stays up, committed the backup, and warned once"

mount -o remount,size=64m "$AGENT_STATE" || fail "cannot grow the tmpfs"
for _ in $(seq 1 100); do
    grep -q "status.json written again" "$T/agent.log" && break
    sleep 0.1
done
grep -q "status.json written again" "$T/agent.log" \
    || { tail -n 20 "$T/agent.log" >&2; fail "the agent did not say its status file is written again"; }
jq -e '.last_backup > 0 and .files_todo == 0' "$AGENT_STATE/status.json" >/dev/null \
    || { cat "$AGENT_STATE/status.json" >&2; fail "the status file does not show the backup"; }
ok "with room again the status file is written again and shows the backup"
agent_stop
e2e_server_stop
