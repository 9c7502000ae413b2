#!/usr/bin/env bash
# server_diskfull: the server's disk fills up in the middle of a backup.
#
# cairnd's whole state directory (catalog and archives) is a 48 MB tmpfs.
# A device backs up ~100 MB of random data: the backup fails with exit 1
# and a message that says the server's disk is full (not the computer's),
# in a few lines, and does not hang.  The server stays up and answers (an
# administrator lists the devices), keeps no temporary objects of the
# refused uploads and records no snapshot.  Then the disk is grown (the
# tmpfs remounted at 400 MB, as an administrator would grow the volume)
# and the same backup runs again: it completes without sending again what
# the server had stored, and the tree restored from the server compares
# equal; check --read-data passes.  Needs root (mount); fails, never
# skips, without it.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

is_root || fail "server_diskfull needs root to mount a tmpfs (run the e2e suite as root)"
unset CAIRN_DEVICE_FILE CAIRN_SESSION_FILE CAIRN_SERVER CAIRN_SERVER_PIN \
      CAIRN_USERNAME CAIRN_LOGIN_PASSWORD_FILE CAIRN_TOTP_COMMAND \
      CAIRN_TOTP_FILE CAIRN_RECOVERY_CODE_FILE CAIRN_NEW_USER_PASSWORD_FILE \
      CAIRN_ADMIN_PASSWORD_FILE CAIRN_ESCROW_PASSPHRASE_FILE
export HOME=$T/home XDG_CONFIG_HOME=$T/home/.config
mkdir -p "$HOME" "$T/state"

mount -t tmpfs -o size=48m,mode=0700 tmpfs "$T/state" 2>"$T/mount.err" \
    || fail "cannot mount a 48 MB tmpfs at $T/state: $(cat "$T/mount.err") (this test needs mount permission)"
E2E_MOUNTS+=("$T/state")
e2e_server_start
free_kib() { df -k --output=avail "$STATE" | tail -n 1 | tr -d ' '; }
metric() { curl -sk "$URL/metrics" | awk -v m="$1" '$1 == m {print $2}'; }

e2e_enrol_shared
ADMIN_ENV=(env CAIRN_SESSION_FILE="$ADMIN_SESSION")
DEV_ENV=(env CAIRN_SESSION_FILE="$ADMIN_SESSION" CAIRN_DEVICE_FILE="$DEVFILE")
OBJ=$STATE/objects/$DEV
ok "device $DEV enrolled; the server's state is on a 48 MB tmpfs ($(free_kib) KiB free)"

SRC=$T/src
mkdir -p "$SRC/keep" "$SRC/media"
random_file "$SRC/keep/small1" 2
echo "a note" > "$SRC/keep/note.txt"
for i in $(seq -w 1 10); do random_file "$SRC/media/clip$i" 10; done
TREE=$(du -sb --apparent-size "$SRC" | cut -f1)

# ------------------------------------------------------------------ full
T0=$(date +%s)
run full "${DEV_ENV[@]}" "$CAIRN" backup "$SRC"
ELAPSED=$(( $(date +%s) - T0 ))
say "backup of $TREE bytes onto a 48 MB server exited $RC after $ELAPSED s; $(free_kib) KiB free there"
[[ $RC -eq 1 ]] || { show full; fail "the backup exited $RC (expected 1: a failure)"; }
mentions full "no space left.*the server|server's disk is full" "that the server's disk is full"
[[ $(wc -l < "$T/full.err") -le 10 ]] \
    || { show full; fail "the error is not one clear message (stderr has $(wc -l < "$T/full.err") lines)"; }
(( ELAPSED <= 120 )) || fail "the client took $ELAPSED s to give up on a full server"
ok "the backup failed clearly: $(grep -m1 -E 'no space|disk is full' "$T/full.err" | cut -c1-160)"

kill -0 "$SRV_PID" 2>/dev/null || { tail -n 20 "$SRV_LOG" >&2; fail "cairnd died when its disk filled"; }
must devices "${ADMIN_ENV[@]}" "$CAIRN" admin devices --json
grep -q "$DEV" "$T/devices.out" || { show devices; fail "the device list lacks $DEV"; }
LEFT=$(find "$OBJ" -name '.tmp-*' | wc -l)
[[ $LEFT -eq 0 ]] || { find "$OBJ" -name '.tmp-*' -ls >&2; fail "$LEFT temporary objects of refused uploads left on the server"; }
must snaps "${DEV_ENV[@]}" "$CAIRN" --json snapshots
[[ $(jq_py snaps "len(by('snapshot'))") -eq 0 ]] || { show snaps; fail "the failed backup left a snapshot"; }
read -r NPACKS STORED < <(find "$OBJ/data" -type f ! -name '.*' -printf '%s\n' 2>/dev/null \
    | awk '{n++; b += $1} END {printf "%d %d\n", n, b}')
ok "the server is up, lists the device, kept no temporary objects and no snapshot; $NPACKS packs ($STORED bytes) stored"

# ------------------------------------------------------------------ filled
# Every byte taken: a person logging in needs a session written, which
# cannot be; the answer says why, and the server stays up.
cat /dev/zero > "$STATE/filler" 2>/dev/null || true
say "the server's disk filled to the last byte ($(free_kib) KiB free)"
run login2 env CAIRN_SESSION_FILE="$T/admin2.session" "$CAIRN" login --server "$URL" \
    --pin "$PIN" --username root --password-file "$ROOT_PW_FILE" \
    --totp-command "$T/totp root $ROOT_TOTP"
say "a login on the full server exited $RC"
[[ $RC -ne 0 ]] || { show login2; fail "a login succeeded although the server could not write its session"; }
mentions login2 "disk is full" "that the server's disk is full"
kill -0 "$SRV_PID" 2>/dev/null || { tail -n 20 "$SRV_LOG" >&2; fail "cairnd died when its disk filled"; }
must devices2 "${ADMIN_ENV[@]}" "$CAIRN" admin devices --json
rm -f "$STATE/filler"
must login3 env CAIRN_SESSION_FILE="$T/admin2.session" "$CAIRN" login --server "$URL" \
    --pin "$PIN" --username root --password-file "$ROOT_PW_FILE" \
    --totp-command "$T/totp root $ROOT_TOTP"
ok "with space again, the login succeeds"

# ------------------------------------------------------------------ grown
mount -o remount,size=400m "$STATE" || fail "cannot grow the tmpfs"
IN1=$(metric cairn_bytes_in_total)
must again "${DEV_ENV[@]}" "$CAIRN" backup "$SRC"
IN2=$(metric cairn_bytes_in_total)
SENT=$(( ${IN2%.*} - ${IN1%.*} ))
say "after growing the disk the backup completed; it sent $SENT bytes of a $TREE-byte tree ($STORED stored before)"
(( SENT + STORED <= TREE + 8 * 1048576 )) \
    || fail "the backup sent $SENT bytes: what the server had stored ($STORED bytes) was sent again"

must restore "${DEV_ENV[@]}" "$CAIRN" restore "latest:$SRC" --target "$T/r"
treecmp "$SRC" "$T/r"
must checkdata "${DEV_ENV[@]}" "$CAIRN" check --read-data
ok "restored from the server equal to the source; check --read-data passes"
e2e_server_stop
