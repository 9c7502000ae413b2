#!/usr/bin/env bash
# agent_serverfull: the server's disk fills up under a running agent.
#
# cairnd's state directory is a 48 MB tmpfs.  cairn-agent protects a
# folder that gets ~80 MB of new files: its backup fails, the changes stay
# queued, and its status says the *server's* disk is full (not "no space
# left on device", which would send the person to clean their own disk).
# The agent stays up and keeps trying.  Once the disk is grown (as an
# administrator would), its next try commits a snapshot on its own, and
# what the server holds restores equal to the folder.  Needs root (mount).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

is_root || fail "agent_serverfull needs root to mount a tmpfs (run the e2e suite as root)"
mkdir -p "$T/state"
mount -t tmpfs -o size=48m,mode=0700 tmpfs "$T/state" 2>"$T/mount.err" \
    || fail "cannot mount a 48 MB tmpfs at $T/state: $(cat "$T/mount.err")"
E2E_MOUNTS+=("$T/state")
source "$(dirname "$0")/agent_setup.sh"

echo "first" > "$SEL/note.txt"
for i in $(seq -w 1 8); do random_file "$SEL/clip$i" 10; done
agent_config '"frequency": 0'
agent_start

for _ in $(seq 1 600); do
    jq -e '.last_error != ""' "$AGENT_STATE/status.json" >/dev/null 2>&1 && break
    kill -0 "$AGENT_PID" 2>/dev/null || { tail -n 30 "$T/agent.log" >&2; fail "cairn-agent died"; }
    sleep 0.1
done
ERR=$(jq -r .last_error "$AGENT_STATE/status.json" 2>/dev/null || true)
say "the agent's status while the server is full: last_error \"$ERR\", $(jq .files_todo "$AGENT_STATE/status.json") files to do"
[[ $ERR == "the server's disk is full" ]] || { tail -n 20 "$T/agent.log" >&2; fail "the status does not say the server's disk is full"; }
jq -e '.files_todo > 0' "$AGENT_STATE/status.json" >/dev/null \
    || { cat "$AGENT_STATE/status.json" >&2; fail "the changes did not stay queued"; }
grep -q "backup failed (the server's disk is full); changes stay queued" "$T/agent.log" \
    || { tail -n 20 "$T/agent.log" >&2; fail "the agent's log does not say why the backup failed"; }
(( $(commits) == 0 )) || fail "a snapshot was committed although the server is full"
ok "backup refused by the full server: changes queued, the status and the log say the server's disk is full"

mount -o remount,size=400m "$STATE" || fail "cannot grow the tmpfs"
say "the server's disk grown to 400 MB; waiting for the agent's next try"
wait_commit 0 120
wait_idle 60
latest_matches
jq -e '.last_error == ""' "$AGENT_STATE/status.json" >/dev/null \
    || { cat "$AGENT_STATE/status.json" >&2; fail "the error is still shown after a committed backup"; }
ok "the agent's next try committed the folder by itself; the restore equals it"
agent_stop
e2e_server_stop
