#!/usr/bin/env bash
# restore_resume: a restore from a real cairnd killed with SIGKILL half-way
# and run again.  No partial file is ever under its real name; the second
# run skips the files the first one finished (same inode, same ctime: not
# written twice; the JSON summary counts them as skipped) and the result
# equals the source exactly.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

[[ -n ${CAIRND:-} && -x ${CAIRND:-} ]] || fail "CAIRND is not set (path of the cairnd binary)"
command -v oathtool >/dev/null || fail "oathtool is needed (Debian package oathtool)"

unset CAIRN_DEVICE_FILE CAIRN_SESSION_FILE CAIRN_SERVER CAIRN_SERVER_PIN \
      CAIRN_USERNAME CAIRN_LOGIN_PASSWORD_FILE CAIRN_TOTP_COMMAND \
      CAIRN_TOTP_FILE CAIRN_RECOVERY_CODE_FILE CAIRN_NEW_USER_PASSWORD_FILE \
      CAIRN_ADMIN_PASSWORD_FILE CAIRN_ESCROW_PASSPHRASE_FILE CAIRN_DEVICE
export HOME=$T/home XDG_CONFIG_HOME=$T/home/.config
mkdir -p "$HOME"

json_get() {
    python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); r=eval(sys.argv[2]); print(r if r is not None else "")' "$1" "$2"
}

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
CONF=$T/cairnd.json
printf '{"listen_addr": "127.0.0.1", "listen_port": %s, "state_dir": "%s", "log_level": "warn"}\n' \
    "$PORT" "$T/state" > "$CONF"
printf 'admin password %s\n' "$RANDOM" > "$T/admin.pw"
printf 'escrow passphrase %s\n' "$RANDOM" > "$T/escrow.pw"
printf 'ana password %s\n' "$RANDOM" > "$T/ana.pw"
chmod 600 "$T"/*.pw
must init "$CAIRND" --config "$CONF" init --org "Example University" \
    --admin boss --department IT --json \
    --admin-password-file "$T/admin.pw" --escrow-passphrase-file "$T/escrow.pw"
ADMIN_TOTP=$(json_get "$T/init.out" "o['totp_secret']")
"$CAIRND" --config "$CONF" serve --ready-file "$T/ready" > "$T/cairnd.log" 2>&1 &
E2E_PIDS+=("$!")
for _ in $(seq 1 100); do [[ -s $T/ready ]] && break; sleep 0.1; done
[[ -s $T/ready ]] || { cat "$T/cairnd.log"; fail "cairnd did not become ready"; }
URL=https://127.0.0.1:$PORT
PIN=$(awk '{print $2}' "$T/ready")

ADMIN=(env CAIRN_SESSION_FILE="$T/admin.session")
must login "${ADMIN[@]}" "$CAIRN" login --server "$URL" --pin "$PIN" --username boss \
    --password-file "$T/admin.pw" --totp-command "oathtool --totp -b $ADMIN_TOTP"
must dept "${ADMIN[@]}" "$CAIRN" admin department add Physics --wave-start "$(date -u -d yesterday +%F)"
must ana "${ADMIN[@]}" "$CAIRN" admin user add ana --department Physics --password-file "$T/ana.pw" --json
ANA_TOTP=$(jq_py ana "last['totp_secret']")

ANA=(env CAIRN_SESSION_FILE="$T/ana.session" CAIRN_DEVICE_FILE="$T/ana-device.json")
must enrol "${ANA[@]}" "$CAIRN" enrol --server "$URL" --pin "$PIN" --username ana \
    --password-file "$T/ana.pw" --totp-command "oathtool --totp -b $ANA_TOTP" \
    --category personal --department Physics --name ana-laptop --json
DEV=$(jq_py enrol "last['device_id']")

# 48 files of 4 MiB (incompressible) and 600 small ones.
SRC=$T/src
mkdir -p "$SRC/big" "$SRC/small/a" "$SRC/small/b"
for i in $(seq -w 1 48); do random_file "$SRC/big/f$i.bin" 4; done
for i in $(seq 1 600); do head -c $((100 + i)) /dev/urandom > "$SRC/small/$([[ $((i % 2)) == 0 ]] && echo a || echo b)/s$i"; done
chmod 0640 "$SRC/big/f01.bin"
must backup "${ANA[@]}" "$CAIRN" backup "$SRC"
TOTAL=$(find "$SRC" -type f | wc -l)
ok "backed up $TOTAL files to device $DEV"

# The restore, one worker, killed once a few files are in place.
OUT=$T/out
RA=("${ANA[@]}" "$CAIRN" --device "$DEV" --password-file "$T/ana.pw")
"${RA[@]}" --threads 1 restore "latest:$SRC" --target "$OUT" > "$T/r1.out" 2> "$T/r1.err" &
RPID=$!
E2E_PIDS+=("$RPID")
for _ in $(seq 1 600); do
    n=$( (find "$OUT/big" -name 'f*.bin' 2>/dev/null || true) | wc -l)
    (( n >= 4 )) && break
    kill -0 "$RPID" 2>/dev/null || break
    sleep 0.02
done
kill -9 "$RPID" 2>/dev/null || fail "the restore ended before it could be killed (too fast?)"
wait "$RPID" 2>/dev/null || true
DONE=$(find "$OUT" -type f ! -name '.cairn-tmp.*' | wc -l)
TMPS=$(find "$OUT" -type f -name '.cairn-tmp.*' | wc -l)
say "killed with $DONE of $TOTAL files in place, $TMPS temporary file(s)"
(( DONE > 0 && DONE < TOTAL )) || fail "the kill did not land half-way ($DONE of $TOTAL)"

# Every file under its real name is whole and exact.
python3 - "$SRC" "$OUT" <<'EOF' || fail "a file in place after the kill is not exact"
import filecmp, os, sys
src, out = sys.argv[1:]
for d, _, files in os.walk(out):
    for f in files:
        if f.startswith(".cairn-tmp."):
            continue
        p = os.path.join(d, f)
        q = os.path.join(src, os.path.relpath(p, out))
        if not filecmp.cmp(p, q, shallow=False):
            sys.exit("differs: " + p)
        if os.stat(p).st_mtime_ns != os.stat(q).st_mtime_ns:
            sys.exit("mtime differs: " + p)
EOF
ok "every file in place after the kill is whole"

# Remember inode and ctime of the files done before the kill.
find "$OUT" -type f ! -name '.cairn-tmp.*' -printf '%P %i %C@\n' | sort > "$T/before.txt"

must r2 "${RA[@]}" --json restore "latest:$SRC" --target "$OUT"
json_lines r2
SKIPPED=$(summary_field r2 skipped_files)
WROTE=$(summary_field r2 files)
say "second run: $WROTE written, $SKIPPED skipped"
[[ $SKIPPED == "$DONE" ]] || { show r2; fail "skipped $SKIPPED files, $DONE were done before the kill"; }
(( WROTE + SKIPPED == TOTAL )) || fail "written $WROTE + skipped $SKIPPED != $TOTAL"
while read -r rel ino ct; do
    now=$(stat -c '%i' "$OUT/$rel")
    [[ $now == "$ino" ]] || fail "$rel was written again (inode $ino -> $now)"
done < "$T/before.txt"
find "$OUT" -type f ! -name '.cairn-tmp.*' -printf '%P %i %C@\n' | sort > "$T/after.txt"
join "$T/before.txt" "$T/after.txt" | awk '$3 != $5 {print; bad=1} END {exit bad}' \
    || fail "files done before the kill changed (ctime)"
ok "the $DONE files done before the kill were not written again"
[[ $(find "$OUT" -name '.cairn-tmp.*' | wc -l) == 0 ]] || fail "temporary files left"
treecmp "$SRC" "$OUT"
