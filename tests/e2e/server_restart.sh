#!/usr/bin/env bash
# server_restart: cairnd is killed with SIGKILL in the middle of a backup.
#
# A device enrolled with a real cairnd (TLS on loopback) backs up ~200 MB of
# random data.  While it uploads (packs already in the device's archive on
# the server), the server is killed with SIGKILL and stays down: the client
# retries for its bounded window (the HTTP store's retry_secs, 60 s) and
# then fails with a clear error; it does not hang.  The server is restarted
# on the same port with the same state directory and the backup is run
# again: it completes, and the server receives clearly less than the tree
# (the client adopts the packs the server acknowledged before the kill
# instead of sending them again; cairn_bytes_in_total on /metrics).  Then
# more data is backed up, the server is killed again and restarted within
# the client's retry window: that backup completes on its own.  Finally
# the tree is restored from the server and compared file by file, and
# `cairn check --read-data` passes.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

[[ -n ${CAIRND:-} && -x ${CAIRND:-} ]] || fail "CAIRND is not set (path of the cairnd binary)"
command -v oathtool >/dev/null || fail "oathtool is needed (Debian package oathtool)"
command -v curl >/dev/null || fail "curl is needed"

unset CAIRN_DEVICE_FILE CAIRN_SESSION_FILE CAIRN_SERVER CAIRN_SERVER_PIN \
      CAIRN_USERNAME CAIRN_LOGIN_PASSWORD_FILE CAIRN_TOTP_COMMAND \
      CAIRN_TOTP_FILE CAIRN_RECOVERY_CODE_FILE CAIRN_NEW_USER_PASSWORD_FILE \
      CAIRN_ADMIN_PASSWORD_FILE CAIRN_ESCROW_PASSPHRASE_FILE
export HOME=$T/home XDG_CONFIG_HOME=$T/home/.config
mkdir -p "$HOME"

json_get() {
    python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); r=eval(sys.argv[2]); print(r if r is not None else "")' "$1" "$2"
}
now_ms() { date +%s%3N; }

# ------------------------------------------------------------------ server
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
STATE=$T/state
CONF=$T/cairnd.json
# info: one log line per request, so the log shows the uploads.
printf '{"listen_addr": "127.0.0.1", "listen_port": %s, "state_dir": "%s", "log_level": "info"}\n' \
    "$PORT" "$STATE" > "$CONF"
printf 'admin password %s\n' "$RANDOM" > "$T/admin.pw"
printf 'escrow passphrase %s\n' "$RANDOM" > "$T/escrow.pw"
chmod 600 "$T/admin.pw" "$T/escrow.pw"

must init "$CAIRND" --config "$CONF" init --org "Example University" \
    --admin boss --department IT --json \
    --admin-password-file "$T/admin.pw" --escrow-passphrase-file "$T/escrow.pw"
ADMIN_TOTP=$(json_get "$T/init.out" "o['totp_secret']")
[[ -n $ADMIN_TOTP ]] || { show init; fail "cairnd init --json gave no totp_secret"; }

# start_server LOG: start cairnd serve (same config, port and state), wait
# until it is ready; sets CAIRND_PID.  The port may still be held for a
# moment after a kill, so a start that fails is tried again for a while.
CAIRND_PID=
start_server() {
    local log=$1 try
    for try in $(seq 1 20); do
        rm -f "$T/ready"
        "$CAIRND" --config "$CONF" serve --ready-file "$T/ready" >> "$log" 2>&1 &
        CAIRND_PID=$!
        E2E_PIDS+=("$CAIRND_PID")
        for _ in $(seq 1 100); do
            [[ -s $T/ready ]] && return 0
            kill -0 "$CAIRND_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$CAIRND_PID" 2>/dev/null && { cat "$log"; fail "cairnd did not become ready"; }
        wait "$CAIRND_PID" 2>/dev/null || true
        sleep 0.5
    done
    cat "$log"
    fail "cairnd did not start on port $PORT (tried $try times)"
}
# kill_server: SIGKILL, and reap it.
kill_server() {
    kill -9 "$CAIRND_PID"
    wait "$CAIRND_PID" 2>/dev/null || true
}

start_server "$T/cairnd1.log"
URL=https://127.0.0.1:$PORT
PIN=$(awk '{print $2}' "$T/ready")
ok "server up at $URL, pin $PIN"

metric() {
    curl -sk "$URL/metrics" | awk -v m="$1" '$1 == m {print $2}'
}

# ------------------------------------------------------------------ enrol
ADMIN_ENV=(env CAIRN_SESSION_FILE="$T/admin.session")
must login "${ADMIN_ENV[@]}" "$CAIRN" login --server "$URL" --pin "$PIN" \
    --username boss --password-file "$T/admin.pw" \
    --totp-command "oathtool --totp -b $ADMIN_TOTP"
must dept "${ADMIN_ENV[@]}" "$CAIRN" admin department add Physics \
    --wave-start "$(date -u -d yesterday +%F)"
DEV_ENV=(env CAIRN_SESSION_FILE="$T/admin.session" CAIRN_DEVICE_FILE="$T/device.json")
must enrol "${DEV_ENV[@]}" "$CAIRN" enrol --server "$URL" --pin "$PIN" \
    --category shared --department Physics --name lab-pc --json
DEV=$(jq_py enrol "last['device_id']")
[[ -n $DEV ]] || { show enrol; fail "enrol --json gave no device_id"; }
PACKS=$STATE/objects/$DEV/data
ok "device $DEV enrolled; its packs go to $PACKS"

# stored_packs: "COUNT BYTES" of the packs stored for the device (not the
# temporary files of uploads in progress).
stored_packs() {
    find "$PACKS" -type f ! -name '.*' -printf '%s\n' 2>/dev/null \
        | awk '{n++; b += $1} END {printf "%d %d\n", n, b}'
}

# ------------------------------------------------------------------ data
SRC=$T/src
mkdir -p "$SRC/a" "$SRC/b"
say "making 200 MiB of random data"
for i in 1 2 3 4; do random_file "$SRC/a/r$i" 25; done
for i in 1 2 3 4; do random_file "$SRC/b/r$i" 25; done
for i in $(seq 1 50); do printf 'small file %d %s\n' "$i" "$RANDOM" > "$SRC/b/s$i.txt"; done
TREE=$(du -sb --apparent-size "$SRC" | cut -f1)

# ------------------------------------------------------------------ kill 1
# The backup runs in the background; once the server holds two packs of
# it, the server is killed and left down.
"${DEV_ENV[@]}" "$CAIRN" backup "$SRC" > "$T/bk1.out" 2> "$T/bk1.err" &
BK=$!
E2E_PIDS+=("$BK")
for _ in $(seq 1 1200); do
    read -r np _ < <(stored_packs)
    (( np >= 2 )) && break
    kill -0 "$BK" 2>/dev/null || break
    sleep 0.02
done
if ! kill -0 "$BK" 2>/dev/null; then
    wait "$BK" || true
    cat "$T/bk1.err" >&2
    fail "the backup ended before the server could be killed: test inconclusive"
fi
IN_KILLED=$(metric cairn_bytes_in_total)
kill_server
T_KILL=$(now_ms)
read -r NPACKS STORED < <(stored_packs)
NPUT=$(grep -c ' PUT /api/v1/devices/.*/objects/pack/.* 20[01] ' "$T/cairnd1.log" || true)
say "server killed with SIGKILL: $NPACKS packs ($STORED bytes) stored, $NPUT pack PUTs answered, about ${IN_KILLED%.*} bytes received"

# The client retries for its bounded window, then fails, clearly.
RC=0
wait "$BK" || RC=$?
T_FAIL=$(now_ms)
ELAPSED=$(( (T_FAIL - T_KILL) / 1000 ))
(( RC != 0 )) || { show bk1; fail "the backup succeeded although the server was killed"; }
(( RC < 128 )) || { show bk1; fail "the backup crashed (signal $((RC - 128)))"; }
(( ELAPSED <= 180 )) || fail "the client took $ELAPSED s to give up (retry window 60 s)"
mentions bk1 "connect.*gave up after [0-9]+ tries|gave up after [0-9]+ tries" "the retries it gave up"
mentions_fixed bk1 "$URL" "the server it could not reach"
say "the client gave up $ELAPSED s after the kill (exit $RC):"
sed 's/^/    /' "$T/bk1.err" | cut -c1-200 | tail -n 3

# ------------------------------------------------------------------ restart
start_server "$T/cairnd2.log"
[[ $(awk '{print $2}' "$T/ready") == "$PIN" ]] || fail "the restarted server has another pin"
read -r NPACKS2 STORED2 < <(stored_packs)
[[ $NPACKS2 -ge $NPACKS ]] || fail "packs were lost across the restart ($NPACKS -> $NPACKS2)"
ok "server restarted on port $PORT; $NPACKS2 packs still stored"

must snaps2 "${DEV_ENV[@]}" "$CAIRN" --json snapshots
[[ $(jq_py snaps2 "len(by('snapshot'))") -eq 0 ]] || { show snaps2; fail "the interrupted backup left a snapshot"; }

IN1=$(metric cairn_bytes_in_total)
must bk2 "${DEV_ENV[@]}" "$CAIRN" --json backup "$SRC"
IN2=$(metric cairn_bytes_in_total)
SENT=$(( ${IN2%.*} - ${IN1%.*} ))
say "tree $TREE bytes; packs stored before the kill: $NPACKS ($STORED bytes); second backup sent $SENT bytes"
SLACK=$(( 8 * 1048576 + TREE / 50 ))
if (( NPACKS == 0 )); then
    say "no pack was stored before the kill: nothing to adopt (the test only shows the backup completes)"
else
    # Nothing acknowledged is sent again: at most the rest of the tree
    # plus overhead (the packs in flight at the kill, indexes, trees).
    (( SENT + STORED <= TREE + SLACK )) \
        || fail "the second backup sent $SENT bytes: the $STORED bytes of packs stored before the kill were sent again"
    (( SENT < TREE )) || fail "the second backup sent the whole tree again ($SENT >= $TREE bytes)"
    ok "second backup sent $SENT bytes < tree $TREE - stored $STORED + slack $SLACK"
fi

# ------------------------------------------------------------------ kill 2
# More data; the server is killed once a pack of it is stored and
# restarted 2 s later, well within the client's retry window: the backup
# completes by itself.
mkdir -p "$SRC/c"
for i in 1 2 3; do random_file "$SRC/c/r$i" 20; done
read -r NBEFORE _ < <(stored_packs)
"${DEV_ENV[@]}" "$CAIRN" backup "$SRC" > "$T/bk3.out" 2> "$T/bk3.err" &
BK=$!
E2E_PIDS+=("$BK")
for _ in $(seq 1 1200); do
    read -r np _ < <(stored_packs)
    (( np > NBEFORE )) && break
    kill -0 "$BK" 2>/dev/null || break
    sleep 0.02
done
if kill -0 "$BK" 2>/dev/null; then
    kill_server
    read -r NP3 _ < <(stored_packs)
    say "server killed again with $((NP3 - NBEFORE)) new pack(s) stored; restarting it in 2 s"
    sleep 2
    start_server "$T/cairnd3.log"
    RC=0
    wait "$BK" || RC=$?
    (( RC == 0 )) || { show bk3; fail "the backup did not complete after the server came back within the retry window (exit $RC)"; }
    ok "the backup rode out a server restart within its retry window"
else
    wait "$BK" || { show bk3; fail "the third backup failed"; }
    say "the third backup ended before the server could be killed (no restart shown)"
fi

# ------------------------------------------------------------------ restore
must snaps3 "${DEV_ENV[@]}" "$CAIRN" --json snapshots
[[ $(jq_py snaps3 "len(by('snapshot'))") -eq 2 ]] || { show snaps3; fail "two snapshots expected"; }
must restore "${DEV_ENV[@]}" "$CAIRN" restore "latest:$SRC" --target "$T/restored"
n=0
while IFS= read -r -d '' f; do
    rel=${f#"$SRC"/}
    cmp -s "$f" "$T/restored/$rel" || fail "restored $rel differs from the source"
    n=$((n + 1))
done < <(find "$SRC" -type f -print0)
(( n >= 61 )) || fail "only $n files compared"
ok "$n restored files equal their sources (cmp)"
must check "${DEV_ENV[@]}" "$CAIRN" check --read-data
ok "check --read-data passes"
say "measured: tree $TREE bytes; at the kill $NPACKS packs ($STORED bytes) stored, ${IN_KILLED%.*} bytes received; client gave up after $ELAPSED s; second backup sent $SENT bytes"
