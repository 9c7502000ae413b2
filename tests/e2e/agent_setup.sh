# agent_setup.sh - sourced by the agent_* scenarios (after lib.sh): a real
# cairnd on loopback (e2e_server_start), this computer enrolled as a shared
# device by the admin with `cairn enrol`, and helpers to run cairn-agent
# and look at what reached the server.
#
# Sets DEVFILE (the device file), DEV (device id), SEL (the selected
# folder, empty), AGENT_STATE (its state folder), AGENT_CONF (its config).

[[ -n ${CAIRN_AGENT:-} && -x ${CAIRN_AGENT:-} ]] || fail "CAIRN_AGENT is not set (path of cairn-agent)"
unset CAIRN_DEVICE_FILE CAIRN_SESSION_FILE CAIRN_REPOSITORY
export HOME=$T/home XDG_CONFIG_HOME=$T/home/.config
mkdir -p "$HOME"

e2e_server_start
e2e_enrol_shared
export CAIRN_SESSION_FILE=$ADMIN_SESSION
SEL=$T/sel
AGENT_STATE=$T/agent-state
AGENT_CONF=$T/agent.json
mkdir -p "$SEL"

# dev_cairn ARGS...: cairn on this computer's archive on the server.
dev_cairn() { CAIRN_DEVICE_FILE=$DEVFILE "$CAIRN" "$@"; }

# agent_config JSON-FIELDS: write the agent's config with the selection
# and these extra fields (e.g. '"frequency": 0').
agent_config() {
    printf '{"paths": ["%s"], "settle": 1%s}\n' "$SEL" "${1:+, $1}" > "$AGENT_CONF"
}

# agent_start [ARGS...]: cairn-agent in the background (log $T/agent.log).
agent_start() {
    "$CAIRN_AGENT" --config "$AGENT_CONF" --device-file "$DEVFILE" \
        --state-dir "$AGENT_STATE" -v "$@" >> "$T/agent.log" 2>&1 &
    AGENT_PID=$!
    E2E_PIDS+=("$AGENT_PID")
}

# agent_stop: SIGTERM; it must exit 0 without sanitizer reports.
agent_stop() {
    local rc=0
    kill -TERM "$AGENT_PID"
    wait "$AGENT_PID" || rc=$?
    [[ $rc -eq 0 ]] || { tail -n 30 "$T/agent.log" >&2; fail "cairn-agent exited with $rc"; }
    if grep -E 'runtime error|AddressSanitizer|LeakSanitizer' "$T/agent.log" >&2; then
        fail "sanitizer reports in the agent's log"
    fi
}

# commits: how many snapshots the agent has committed (its log).
commits() { grep -c 'committed snapshot' "$T/agent.log" || true; }

# wait_commit N SECS: wait until more than N commits are in the log.
wait_commit() {
    local n=$1 i
    for i in $(seq 1 $(( $2 * 10 ))); do
        (( $(commits) > n )) && return 0
        kill -0 "$AGENT_PID" 2>/dev/null || { tail -n 30 "$T/agent.log" >&2; fail "cairn-agent died"; }
        sleep 0.1
    done
    tail -n 30 "$T/agent.log" >&2
    fail "no new snapshot within $2 s"
}

# wait_idle SECS: wait until the agent has nothing queued and runs no
# backup (its status file), then for its last commit.
wait_idle() {
    local i
    for i in $(seq 1 $(( $1 * 10 ))); do
        if [[ -s $AGENT_STATE/status.json ]] &&
           jq -e '.files_todo == 0 and .phase == "idle"' "$AGENT_STATE/status.json" >/dev/null 2>&1; then
            return 0
        fi
        kill -0 "$AGENT_PID" 2>/dev/null || { tail -n 30 "$T/agent.log" >&2; fail "cairn-agent died"; }
        sleep 0.1
    done
    cat "$AGENT_STATE/status.json" >&2 || true
    tail -n 30 "$T/agent.log" >&2
    fail "the agent did not become idle within $1 s"
}

# in_latest PATH: is PATH in the newest snapshot on the server? (prints the
# ls line)
in_latest() {
    dev_cairn --json ls latest "$(dirname "$1")" > "$T/ls.out" 2> "$T/ls.err" || return 1
    jq -e --arg p "$1" 'select(.path == $p)' "$T/ls.out" > /dev/null
}

# latest_matches: the newest snapshot restored equals $SEL.
latest_matches() {
    rm -rf "$T/check"
    must restore_latest dev_cairn restore "latest:$SEL" --target "$T/check"
    treecmp "$SEL" "$T/check"
}

# metric NAME: a counter of the server's /metrics.
metric() {
    curl -sk --pinnedpubkey "$PIN" "$URL/metrics" | awk -v m="$1" '$1 == m {print $2}'
}

# server_restart: start cairnd again on the same state and port (after
# e2e_server_stop or a kill).
server_restart() {
    rm -f "$T/ready"
    "$CAIRND" --config "$T/cairnd.json" serve --ready-file "$T/ready" >> "$SRV_LOG" 2>&1 &
    SRV_PID=$!
    E2E_PIDS+=("$SRV_PID")
    for _ in $(seq 100); do
        [[ -s $T/ready ]] && return 0
        sleep 0.1
    done
    fail "cairnd did not start again"
}

# stored_bytes: bytes of this device's objects in the server's store.
stored_bytes() {
    du -sb --apparent-size "$STATE/objects/$DEV" | awk '{print $1}'
}
