#!/usr/bin/env bash
# enrol_backup: a real cairnd on loopback with TLS.  The organisation is made
# with `cairnd init --json`; the admin logs in with password + a TOTP code
# from oathtool, creates departments (one wave started yesterday, one that
# starts tomorrow) and the user ana; enrolment in the later wave is refused
# with its date; ana enrols a personal device, backs a small tree up to the
# server, lists and restores it through the server with the device's own key;
# a second backup with nothing changed sends almost nothing (the server's
# /metrics); the admin sees her device with a last backup at 100 % and the
# migration report with first full backup and legacy due = +60 days; an
# admin enrols a shared device, ana (not an admin) may not; a wrong pin is
# refused.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

[[ -n ${CAIRND:-} && -x ${CAIRND:-} ]] || fail "CAIRND is not set (path of the cairnd binary)"
command -v oathtool >/dev/null || fail "oathtool is needed (Debian package oathtool)"
command -v openssl >/dev/null || fail "openssl is needed"
command -v curl >/dev/null || fail "curl is needed"

# Nothing from the caller may point us at another server or device.
unset CAIRN_DEVICE_FILE CAIRN_SESSION_FILE CAIRN_SERVER CAIRN_SERVER_PIN \
      CAIRN_USERNAME CAIRN_LOGIN_PASSWORD_FILE CAIRN_TOTP_COMMAND \
      CAIRN_TOTP_FILE CAIRN_RECOVERY_CODE_FILE CAIRN_NEW_USER_PASSWORD_FILE \
      CAIRN_ADMIN_PASSWORD_FILE CAIRN_ESCROW_PASSPHRASE_FILE
export HOME=$T/home XDG_CONFIG_HOME=$T/home/.config
mkdir -p "$HOME"

c() { "$CAIRN" "$@"; }
# json_get FILE PYEXPR: evaluate PYEXPR on o = the JSON document in FILE.
json_get() {
    python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); r=eval(sys.argv[2]); print(r if r is not None else "")' "$1" "$2"
}
# jl NAME PYEXPR: on the JSON lines of run NAME (as jq_py).
jl() { jq_py "$@"; }

# ------------------------------------------------------------------ server
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
STATE=$T/state
CONF=$T/cairnd.json
printf '{"listen_addr": "127.0.0.1", "listen_port": %s, "state_dir": "%s", "log_level": "warn"}\n' \
    "$PORT" "$STATE" > "$CONF"
printf 'admin password %s\n' "$RANDOM" > "$T/admin.pw"
printf 'escrow passphrase %s\n' "$RANDOM" > "$T/escrow.pw"
chmod 600 "$T/admin.pw" "$T/escrow.pw"

must init "$CAIRND" --config "$CONF" init --org "Example University" \
    --admin boss --department IT --json \
    --admin-password-file "$T/admin.pw" --escrow-passphrase-file "$T/escrow.pw"
ADMIN_TOTP=$(json_get "$T/init.out" "o['totp_secret']")
[[ -n $ADMIN_TOTP ]] || { show init; fail "cairnd init --json gave no totp_secret"; }

"$CAIRND" --config "$CONF" serve --ready-file "$T/ready" > "$T/cairnd.log" 2>&1 &
CAIRND_PID=$!
E2E_PIDS+=("$CAIRND_PID")
for _ in $(seq 1 100); do
    [[ -s $T/ready ]] && break
    kill -0 "$CAIRND_PID" 2>/dev/null || { cat "$T/cairnd.log"; fail "cairnd exited"; }
    sleep 0.1
done
[[ -s $T/ready ]] || { cat "$T/cairnd.log"; fail "cairnd did not become ready"; }
URL=https://127.0.0.1:$PORT
READY_PIN=$(awk '{print $2}' "$T/ready")
# The pin, independently: SHA-256 of the certificate's public key.
PIN=sha256//$(openssl s_client -connect "127.0.0.1:$PORT" </dev/null 2>/dev/null \
    | openssl x509 -pubkey -noout | openssl pkey -pubin -outform der \
    | openssl dgst -sha256 -binary | base64)
[[ $PIN == "$READY_PIN" ]] || fail "pin from openssl ($PIN) differs from cairnd's ($READY_PIN)"
ok "server up at $URL, pin $PIN"

metric() {
    curl -sk "$URL/metrics" | awk -v m="$1" '$1 == m {print $2}'
}

# ------------------------------------------------------------------ admin
ADMIN_ENV=(env CAIRN_SESSION_FILE="$T/admin.session")
ADMIN_LOGIN=(--server "$URL" --username boss --password-file "$T/admin.pw"
             --totp-command "oathtool --totp -b $ADMIN_TOTP")

# Trust on first use without a terminal: refused, and the pin is shown.
run tofu setsid -w "${ADMIN_ENV[@]}" "$CAIRN" login "${ADMIN_LOGIN[@]}"
[[ $RC -ne 0 ]] || { show tofu; fail "login without a pin and without a terminal succeeded"; }
mentions_fixed tofu "$PIN" "the server's pin"
[[ ! -e $T/admin.session ]] || fail "a refused login left a session file"

# A wrong pin: refused.
BADPIN=sha256//$(head -c 32 /dev/urandom | base64)
run badpin "${ADMIN_ENV[@]}" "$CAIRN" login "${ADMIN_LOGIN[@]}" --pin "$BADPIN"
[[ $RC -ne 0 ]] || { show badpin; fail "login with a wrong pin succeeded"; }
mentions badpin "does not have the key" "the pin mismatch"

must login "${ADMIN_ENV[@]}" "$CAIRN" login "${ADMIN_LOGIN[@]}" --pin "$PIN"
mentions login "logged in .* as boss" "the login"
[[ $(stat -c %a "$T/admin.session") == 600 ]] || fail "session file is not mode 600"
grep -q '"token"' "$T/admin.session" || fail "session file has no token"

YESTERDAY=$(date -u -d yesterday +%F)
TOMORROW=$(date -u -d tomorrow +%F)
must dept1 "${ADMIN_ENV[@]}" "$CAIRN" admin department add Physics --wave-start "$YESTERDAY" --json
json_lines dept1
must dept2 "${ADMIN_ENV[@]}" "$CAIRN" admin department add Chemistry --wave-start "$TOMORROW"
must depts "${ADMIN_ENV[@]}" "$CAIRN" admin department list --json
[[ $(jl depts "sorted(m['name'] for m in by('department'))") == $'Chemistry\nIT\nPhysics' ]] \
    || { show depts; fail "department list"; }

printf 'ana password %s\n' "$RANDOM" > "$T/ana.pw"
chmod 600 "$T/ana.pw"
must useradd "${ADMIN_ENV[@]}" "$CAIRN" admin user add ana --department Physics \
    --password-file "$T/ana.pw" --json
ANA_TOTP=$(jl useradd "last.get('totp_secret', '')")
[[ -n $ANA_TOTP ]] || { show useradd; fail "user add --json gave no totp_secret"; }
[[ $(jl useradd "last.get('totp_uri', '').startswith('otpauth://')") == 1 ]] \
    || { show useradd; fail "user add: no otpauth URI"; }
must users "${ADMIN_ENV[@]}" "$CAIRN" admin user list --json
[[ $(jl users "len(by('user'))") == 2 ]] || { show users; fail "user list"; }

# ------------------------------------------------------------------ waves
run wave "${ADMIN_ENV[@]}" CAIRN_DEVICE_FILE="$T/chem-device.json" "$CAIRN" enrol \
    --server "$URL" --pin "$PIN" --category shared --department Chemistry --name chem-pc
[[ $RC -ne 0 ]] || { show wave; fail "enrolment before the wave started succeeded"; }
mentions_fixed wave "$TOMORROW" "the wave's start date"
[[ ! -e $T/chem-device.json ]] || fail "a refused enrolment left a device file"

# ------------------------------------------------------------------ ana
ANA_ENV=(env CAIRN_SESSION_FILE="$T/ana.session" CAIRN_DEVICE_FILE="$T/ana-device.json")
must enrol "${ANA_ENV[@]}" "$CAIRN" enrol --server "$URL" --pin "$PIN" \
    --username ana --password-file "$T/ana.pw" \
    --totp-command "oathtool --totp -b $ANA_TOTP" \
    --category personal --department Physics --name ana-laptop --json
json_lines enrol
DEV=$(jl enrol "last['device_id']")
[[ $(jl enrol "last['category'] + ' ' + last['department'] + ' ' + last['server']") \
    == "personal Physics $URL" ]] || { show enrol; fail "enrol --json fields"; }
[[ $(stat -c %a "$T/ana-device.json") == 600 ]] || fail "device file is not mode 600"
! grep -q "$(json_get "$T/ana-device.json" "o['archive_key']")" "$T/enrol.out" "$T/enrol.err" \
    || fail "enrol printed the archive key"
ok "ana enrolled device $DEV"

# A small tree: files, modes, a symlink, an empty file, a 3 MiB file.
SRC=$T/src/data
mkdir -p "$SRC/docs/deep" "$SRC/bin"
for i in $(seq 1 20); do printf 'note %d\n%s\n' "$i" "$(head -c 300 /dev/urandom | base64)" > "$SRC/docs/n$i.txt"; done
random_file "$SRC/big.bin" 3
: > "$SRC/empty"
printf '#!/bin/sh\necho hi\n' > "$SRC/bin/run"; chmod 0750 "$SRC/bin/run"
printf 'secret\n' > "$SRC/docs/deep/private"; chmod 0600 "$SRC/docs/deep/private"
ln -s ../big.bin "$SRC/docs/link"
chmod 0711 "$SRC/docs/deep"

# (A file changed within a timestamp tick of a backup is read again by the
# next one; the tree was just written.)
sleep 0.2
must backup1 "${ANA_ENV[@]}" "$CAIRN" backup "$SRC"
mentions backup1 "snapshot [0-9a-f]{8} saved" "the snapshot"
must snaps "${ANA_ENV[@]}" "$CAIRN" --json snapshots
[[ $(jl snaps "len(by('snapshot'))") == 1 ]] || { show snaps; fail "one snapshot expected"; }
must restore "${ANA_ENV[@]}" "$CAIRN" restore "latest:$SRC" --target "$T/restored"
treecmp "$SRC" "$T/restored"
must check "${ANA_ENV[@]}" "$CAIRN" check --read-data

# Nothing changed: the second backup sends (almost) nothing.
IN1=$(metric cairn_bytes_in_total)
must backup2 "${ANA_ENV[@]}" "$CAIRN" --json backup "$SRC"
IN2=$(metric cairn_bytes_in_total)
SENT=$(( ${IN2%.*} - ${IN1%.*} ))
say "second backup sent $SENT bytes"
(( SENT < 65536 )) || fail "a backup with nothing changed sent $SENT bytes"
[[ $(summary_field backup2 files_unchanged) -ge 20 ]] || fail "second backup re-read files"

# ------------------------------------------------------------------ reports
must devices "${ADMIN_ENV[@]}" "$CAIRN" admin devices --json
json_lines devices
[[ $(jl devices "[m for m in by('device') if m['id'] == '$DEV'][0]['last_backup'] is not None") == 1 ]] \
    || { show devices; fail "ana's device has no last backup"; }
[[ $(jl devices "int([m for m in by('device') if m['id'] == '$DEV'][0]['percent'])") == 100 ]] \
    || { show devices; fail "ana's device is not 100 % complete"; }
[[ $(jl devices "[m for m in by('device') if m['id'] == '$DEV'][0]['owner']") == ana ]] \
    || { show devices; fail "ana's device has the wrong owner"; }
must devcsv "${ADMIN_ENV[@]}" "$CAIRN" admin devices --csv --department Physics
grep -q "^$DEV,ana-laptop,personal,Physics,ana," "$T/devcsv.out" || { show devcsv; fail "devices --csv"; }
must devtable "${ADMIN_ENV[@]}" "$CAIRN" admin devices
mentions devtable "ana-laptop" "ana's device"

must migration "${ADMIN_ENV[@]}" "$CAIRN" admin migration --json
json_lines migration
python3 - "$T/migration.out" "$DEV" <<'EOF' || { show migration; fail "migration report"; }
import datetime, json, sys
msgs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
m = [x for x in msgs if x.get("message_type") == "migration" and x["id"] == sys.argv[2]][0]
p = lambda s: datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))
assert m["first_backup"], "no first full backup"
d = p(m["legacy_due"]) - p(m["first_backup"])
assert d == datetime.timedelta(days=60), "legacy due is %s after the first backup" % d
assert m["overdue"] is False and m["cancelled_at"] is None
EOF
ok "migration: first full backup and legacy due = +60 days"

must status "${ANA_ENV[@]}" "$CAIRN" status --json
[[ $(jl status "last['device_id'] == '$DEV' and last['from_server']") == 1 ]] \
    || { show status; fail "status --json"; }

must legacy "${ADMIN_ENV[@]}" "$CAIRN" admin legacy-cancelled "$DEV"
must migration2 "${ADMIN_ENV[@]}" "$CAIRN" admin migration --json
[[ $(jl migration2 "[m for m in by('migration') if m['id'] == '$DEV'][0]['cancelled_at'] is not None") == 1 ]] \
    || { show migration2; fail "legacy-cancelled not shown"; }

# ------------------------------------------------------------------ shared
run anashared "${ANA_ENV[@]}" CAIRN_DEVICE_FILE="$T/ana-shared.json" "$CAIRN" enrol \
    --server "$URL" --pin "$PIN" --password-file "$T/ana.pw" \
    --category shared --department Physics --name lab-pc
[[ $RC -ne 0 ]] || { show anashared; fail "a user enrolled a shared device"; }
mentions anashared "administrator" "who may enrol shared devices"
[[ ! -e $T/ana-shared.json ]] || fail "a refused enrolment left a device file"

must shared "${ADMIN_ENV[@]}" CAIRN_DEVICE_FILE="$T/lab-device.json" "$CAIRN" enrol \
    --server "$URL" --pin "$PIN" --category shared --department Physics --name lab-pc --json
SHARED=$(jl shared "last['device_id']")
must sharedbk "${ADMIN_ENV[@]}" CAIRN_DEVICE_FILE="$T/lab-device.json" "$CAIRN" backup "$SRC/docs"
must devices2 "${ADMIN_ENV[@]}" "$CAIRN" admin devices --category shared --json
[[ $(jl devices2 "[m['id'] for m in by('device')]") == "$SHARED" ]] || { show devices2; fail "shared device filter"; }

# ------------------------------------------------------------------ replace
# ana's new laptop replaces the old one and adopts its archive (the owner
# wrap opened with her password; her saved session is reused).
must replace "${ANA_ENV[@]}" CAIRN_DEVICE_FILE="$T/ana-new.json" "$CAIRN" enrol \
    --server "$URL" --pin "$PIN" --password-file "$T/ana.pw" \
    --category personal --department Physics --name ana-new --replaces "$DEV" --json
NEW=$(jl replace "last['device_id']")
must snaps2 "${ANA_ENV[@]}" CAIRN_DEVICE_FILE="$T/ana-new.json" "$CAIRN" --json snapshots
[[ $(jl snaps2 "len(by('snapshot'))") == 2 ]] || { show snaps2; fail "the new device does not see the adopted archive"; }
must restore2 "${ANA_ENV[@]}" CAIRN_DEVICE_FILE="$T/ana-new.json" "$CAIRN" restore "latest:$SRC" --target "$T/restored2"
treecmp "$SRC" "$T/restored2"
run oldtoken "${ANA_ENV[@]}" "$CAIRN" snapshots
[[ $RC -ne 0 ]] || { show oldtoken; fail "the replaced device still reads its archive"; }
ok "device $NEW replaced $DEV and adopted its archive"

# The lab PC (shared, no owner wrap) is replaced too: an administrator
# adopts its archive with the escrow passphrase; a wrong one is refused.
printf 'not the escrow passphrase\n' > "$T/escrow-wrong.pw"
run labwrong "${ADMIN_ENV[@]}" CAIRN_DEVICE_FILE="$T/lab-new.json" "$CAIRN" enrol \
    --server "$URL" --pin "$PIN" --category shared --department Physics --name lab-pc2 \
    --replaces "$SHARED" --escrow-passphrase-file "$T/escrow-wrong.pw"
[[ $RC -ne 0 ]] || { show labwrong; fail "a wrong escrow passphrase adopted the archive"; }
mentions labwrong "escrow passphrase" "a wrong escrow passphrase"
[[ ! -e $T/lab-new.json ]] || fail "a refused replacement left a device file"
must labnew "${ADMIN_ENV[@]}" CAIRN_DEVICE_FILE="$T/lab-new.json" "$CAIRN" enrol \
    --server "$URL" --pin "$PIN" --category shared --department Physics --name lab-pc2 \
    --replaces "$SHARED" --escrow-passphrase-file "$T/escrow.pw" --json
must labrestore "${ADMIN_ENV[@]}" CAIRN_DEVICE_FILE="$T/lab-new.json" "$CAIRN" restore \
    "latest:$SRC/docs" --target "$T/restored-lab"
treecmp "$SRC/docs" "$T/restored-lab"
ok "a shared device was replaced with the escrow passphrase; wrong passphrase refused"

# ------------------------------------------------------------------ logout
must logout "${ADMIN_ENV[@]}" "$CAIRN" logout
[[ ! -e $T/admin.session ]] || fail "logout left the session file"
run afterlogout "${ADMIN_ENV[@]}" "$CAIRN" admin devices
[[ $RC -ne 0 ]] || fail "admin devices worked after logout"
mentions afterlogout "not logged in" "the missing session"
