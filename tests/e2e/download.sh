#!/usr/bin/env bash
# download.sh - restores on the server, end to end: a real cairnd on
# loopback with TLS; ana enrols a personal device with the real cairn and
# backs a small tree up; an administrator enrols a shared device.  With
# curl (bearer tokens; the second login step by recovery codes, so no test
# waits for a fresh TOTP step): ana browses versions (as_of), folders and
# search, downloads a folder as tar and as zip (contents, modes and times
# compared with the source), the size cap answers 413; another user and
# the shared device are refused (403); an admin without an unlock gets 409,
# a wrong escrow passphrase 403, then unlocks and downloads; a password
# change re-wraps (download after a new login with the new password); an
# admin password reset drops the wrap (409) and rewrap re-makes it; restore
# records are bound to their caller; a push restore lets the target
# device read (never write) the source archive while the job runs; the
# audit log holds each act.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

[[ -n ${CAIRND:-} && -x ${CAIRND:-} ]] || fail "CAIRND is not set (path of cairnd)"
for t in curl jq oathtool tar; do
    command -v "$t" >/dev/null || fail "$t is needed"
done
unset CAIRN_DEVICE_FILE CAIRN_SESSION_FILE CAIRN_SERVER CAIRN_SERVER_PIN \
      CAIRN_USERNAME CAIRN_LOGIN_PASSWORD_FILE CAIRN_TOTP_COMMAND \
      CAIRN_TOTP_FILE CAIRN_RECOVERY_CODE_FILE CAIRN_NEW_USER_PASSWORD_FILE \
      CAIRN_ADMIN_PASSWORD_FILE CAIRN_ESCROW_PASSPHRASE_FILE
export HOME=$T/home XDG_CONFIG_HOME=$T/home/.config
mkdir -p "$HOME"

# ------------------------------------------------------------ the server
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
STATE=$T/state
CONF=$T/cairnd.json
# The cap: 2 MiB, under the 3 MiB file of the tree.
cat > "$CONF" <<EOF
{"listen_addr": "127.0.0.1", "listen_port": $PORT, "state_dir": "$STATE",
 "log_level": "warn", "download_max_bytes": 2097152}
EOF
printf 'admin password %s\n' "$RANDOM" > "$T/admin.pw"
printf 'escrow passphrase %s\n' "$RANDOM" > "$T/escrow.pw"
chmod 600 "$T/admin.pw" "$T/escrow.pw"
"$CAIRND" --config "$CONF" init --org "Example University" --admin boss \
    --department IT --json --admin-password-file "$T/admin.pw" \
    --escrow-passphrase-file "$T/escrow.pw" > "$T/init.json" 2> "$T/init.err" \
    || { cat "$T/init.err" >&2; fail "cairnd init"; }
BOSS_TOTP=$(jq -er .totp_secret "$T/init.json")
mapfile -t BOSS_RC < <(jq -r '.recovery_codes[]' "$T/init.json")

"$CAIRND" --config "$CONF" serve --ready-file "$T/ready" > "$T/cairnd.log" 2>&1 &
E2E_PIDS+=("$!")
for _ in $(seq 100); do
    [[ -s $T/ready ]] && break
    sleep 0.1
done
[[ -s $T/ready ]] || { cat "$T/cairnd.log" >&2; fail "cairnd did not start"; }
read -r URL PIN < "$T/ready"
say "cairnd at $URL"

# ------------------------------------------------------------ helpers
# req METHOD PATH [curl args...]: status on stdout, body in $T/body.
req() {
    local m=$1 p=$2
    shift 2
    curl -sS -k --pinnedpubkey "$PIN" -X "$m" -o "$T/body" -D "$T/headers" \
        -w '%{http_code}' "$@" "$URL$p"
}
expect() {
    local want=$1 got
    shift
    got=$(req "$@") || fail "curl $*"
    [[ $got == "$want" ]] || fail "$1 $2: want $want, got $got: $(head -c 600 "$T/body")"
}
jbody() {
    local f
    f=$(mktemp "$T/req.XXXXXX")
    printf '%s' "$1" > "$f"
    echo "--data-binary @$f -H Content-Type:application/json"
}
bearer() { echo "--oauth2-bearer $1"; }
# login USER PASSWORD RECOVERY_CODE: a full session token on stdout.
login() {
    local tok
    expect 200 POST /api/v1/login $(jbody "{\"username\":\"$1\",\"password\":\"$2\"}")
    tok=$(jq -r .token "$T/body")
    expect 200 POST /api/v1/login/totp $(bearer "$tok") $(jbody "{\"recovery_code\":\"$3\"}")
    echo "$tok"
}
code_is() {
    [[ $(jq -r .code "$T/body") == "$1" ]] || fail "want code $1: $(cat "$T/body")"
}

ADMIN_PW=$(head -n1 "$T/admin.pw")
ESCROW=$(head -n1 "$T/escrow.pw")
ADMIN=$(login boss "$ADMIN_PW" "${BOSS_RC[0]}")
YESTERDAY=$(date -u -d yesterday +%FT%TZ)
expect 201 POST /api/v1/departments $(bearer "$ADMIN") \
    $(jbody "{\"name\":\"Physics\",\"wave_start\":\"$YESTERDAY\"}")
ANA_PW="ana password $RANDOM"
BOB_PW="bob password $RANDOM"
expect 201 POST /api/v1/users $(bearer "$ADMIN") \
    $(jbody "{\"username\":\"ana\",\"password\":\"$ANA_PW\",\"department\":\"Physics\",\"role\":\"user\"}")
ANA_TOTP=$(jq -r .totp_secret "$T/body")
mapfile -t ANA_RC < <(jq -r '.recovery_codes[]' "$T/body")
expect 201 POST /api/v1/users $(bearer "$ADMIN") \
    $(jbody "{\"username\":\"bob\",\"password\":\"$BOB_PW\",\"department\":\"Physics\",\"role\":\"user\"}")
mapfile -t BOB_RC < <(jq -r '.recovery_codes[]' "$T/body")

# ------------------------------------------------------------ devices
printf '%s\n' "$ANA_PW" > "$T/ana.pw"
ANA_ENV=(env CAIRN_SESSION_FILE="$T/ana.session" CAIRN_DEVICE_FILE="$T/ana-device.json")
must enrol "${ANA_ENV[@]}" "$CAIRN" enrol --server "$URL" --pin "$PIN" \
    --username ana --password-file "$T/ana.pw" \
    --totp-command "oathtool --totp -b $ANA_TOTP" \
    --category personal --department Physics --name ana-laptop --json
DEV=$(jq_py enrol "last['device_id']")

SRC=$T/src/data
mkdir -p "$SRC/docs/deep"
for i in $(seq 1 20); do printf 'note %d\n%s\n' "$i" "$(head -c 200 /dev/urandom | base64)" > "$SRC/docs/n$i.txt"; done
random_file "$SRC/big.bin" 3
: > "$SRC/docs/empty"
printf '#!/bin/sh\necho hi\n' > "$SRC/docs/run"; chmod 0750 "$SRC/docs/run"
printf 'secret\n' > "$SRC/docs/deep/private"; chmod 0600 "$SRC/docs/deep/private"
ln -s ../big.bin "$SRC/docs/link"
chmod 0711 "$SRC/docs/deep"
touch -d '2021-03-04 05:06:07.123456789' "$SRC/docs/n1.txt"
must backup "${ANA_ENV[@]}" "$CAIRN" backup "$SRC"

ADMIN_ENV=(env CAIRN_SESSION_FILE="$T/admin.session")
must alogin "${ADMIN_ENV[@]}" "$CAIRN" login --server "$URL" --pin "$PIN" \
    --username boss --password-file "$T/admin.pw" \
    --totp-command "oathtool --totp -b $BOSS_TOTP"
must shared "${ADMIN_ENV[@]}" CAIRN_DEVICE_FILE="$T/lab-device.json" "$CAIRN" enrol \
    --server "$URL" --pin "$PIN" --category shared --department Physics --name lab-pc --json
SHARED=$(jq_py shared "last['device_id']")
must sharedbk "${ADMIN_ENV[@]}" CAIRN_DEVICE_FILE="$T/lab-device.json" "$CAIRN" backup "$SRC/docs"
LAB_TOKEN=$(jq -r .token "$T/lab-device.json")
ok "ana's device $DEV and the shared device $SHARED are backed up"

# ------------------------------------------------------------ browse
ANA=$(login ana "$ANA_PW" "${ANA_RC[0]}")
expect 200 GET "/api/v1/devices/$DEV/versions" $(bearer "$ANA")
[[ $(jq length "$T/body") == 1 ]] || fail "versions: $(cat "$T/body")"
SNAP=$(jq -r '.[0].id' "$T/body")
expect 200 GET "/api/v1/devices/$DEV/versions?as_of=2000-01-01T00:00:00Z" $(bearer "$ANA")
[[ $(jq length "$T/body") == 0 ]] || fail "as_of in the past: $(cat "$T/body")"
expect 200 GET "/api/v1/devices/$DEV/versions?as_of=2099-01-01T00:00:00Z" $(bearer "$ANA")
[[ $(jq -r '.[0].id' "$T/body") == "$SNAP" ]] || fail "as_of in the future"
expect 400 GET "/api/v1/devices/$DEV/versions?as_of=yesterday" $(bearer "$ANA")

expect 200 GET "/api/v1/devices/$DEV/versions/latest/tree" $(bearer "$ANA") -G --data-urlencode "path=$SRC/docs"
[[ $(jq -r .snapshot "$T/body") == "$SNAP" ]] || fail "tree: snapshot"
[[ $(jq '.entries | length' "$T/body") == 24 ]] || fail "tree: $(cat "$T/body")"
[[ $(jq -r '.entries[] | select(.name=="run") | "\(.type) \(.mode) \(.size)"' "$T/body") == "file 488 18" ]] \
    || fail "tree: run: $(cat "$T/body")"
[[ $(jq -r '.entries[] | select(.name=="n1.txt") | .mtime' "$T/body") == 2021-03-04T05:06:07Z ]] \
    || fail "tree: mtime"
[[ $(jq -r '.entries[] | select(.name=="link") | .target' "$T/body") == ../big.bin ]] || fail "tree: link"
expect 200 GET "/api/v1/devices/$DEV/versions/${SNAP:0:8}/tree" $(bearer "$ANA") -G --data-urlencode "path=$SRC/docs/deep"
[[ $(jq -r '.entries[0].name' "$T/body") == private ]] || fail "tree by prefix"
expect 404 GET "/api/v1/devices/$DEV/versions/latest/tree" $(bearer "$ANA") -G --data-urlencode "path=$SRC/nothing"
expect 400 GET "/api/v1/devices/$DEV/versions/latest/tree" $(bearer "$ANA") -G --data-urlencode "path=$SRC/../x"
expect 404 GET "/api/v1/devices/$DEV/versions/ffff/tree" $(bearer "$ANA")

expect 200 GET "/api/v1/devices/$DEV/versions/latest/search" $(bearer "$ANA") -G --data-urlencode "q=N1"
[[ $(jq '.results | length' "$T/body") == 11 ]] || fail "search: $(cat "$T/body")"
[[ $(jq -r '.results[] | select(.name=="n1.txt") | .path' "$T/body") == "$SRC/docs/n1.txt" ]] || fail "search: path"
expect 200 GET "/api/v1/devices/$DEV/versions/latest/search" $(bearer "$ANA") -G --data-urlencode "q=n1" --data-urlencode limit=3
[[ $(jq '.results | length' "$T/body") == 3 && $(jq .truncated "$T/body") == true ]] || fail "search limit"
ok "browse: versions, as_of, tree, search"

# The archive stays open between a session's requests (server/repo_cache.h):
# a backup since (a new index) is seen at once, and requests at the same
# time share it.  Then the tree is as it was, for what follows.
printf 'later\n' > "$SRC/docs/later.txt"
must backup2 "${ANA_ENV[@]}" "$CAIRN" backup "$SRC"
expect 200 GET "/api/v1/devices/$DEV/versions/latest/tree" $(bearer "$ANA") -G --data-urlencode "path=$SRC/docs"
[[ $(jq -r .snapshot "$T/body") != "$SNAP" && $(jq '.entries | length' "$T/body") == 25 ]] \
    || fail "the backup since is not seen: $(cat "$T/body")"
PAR=()
for i in $(seq 1 8); do
    curl -sS -k --pinnedpubkey "$PIN" -o "$T/par$i.body" -w '%{http_code}' \
        $(bearer "$ANA") -G --data-urlencode "path=$SRC/docs" \
        "$URL/api/v1/devices/$DEV/versions/latest/search?q=later" > "$T/par$i.code" &
    PAR+=($!)
done
wait "${PAR[@]}" # (not the server's pid)
for i in $(seq 1 8); do
    [[ $(cat "$T/par$i.code") == 200 && $(jq '.results | length' "$T/par$i.body") == 1 ]] \
        || fail "parallel search $i: $(cat "$T/par$i.code") $(cat "$T/par$i.body")"
done
rm "$SRC/docs/later.txt"
must backup3 "${ANA_ENV[@]}" "$CAIRN" backup "$SRC"
expect 200 GET "/api/v1/devices/$DEV/versions/latest/tree" $(bearer "$ANA") -G --data-urlencode "path=$SRC/docs"
[[ $(jq '.entries | length' "$T/body") == 24 ]] || fail "the file removed since is still seen"
ok "a backup since is seen at once; parallel requests share the open archive"

# ------------------------------------------------------------ download
expect 200 POST "/api/v1/devices/$DEV/download" $(bearer "$ANA") \
    $(jbody "{\"snapshot\":\"latest\",\"paths\":[\"$SRC/docs\"],\"format\":\"tar\"}")
mkdir -p "$T/x-tar" && tar -xf "$T/body" -C "$T/x-tar"
treecmp "$SRC/docs" "$T/x-tar/docs"
expect 200 POST "/api/v1/devices/$DEV/download" $(bearer "$ANA") \
    $(jbody "{\"paths\":[\"$SRC/docs\"],\"format\":\"zip\"}")
cp "$T/body" "$T/docs.zip"
python3 - "$T/docs.zip" "$SRC" <<'EOF' || fail "zip differs from the source"
import os, stat, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
src = sys.argv[2]
names = set()
for i in z.infolist():
    n = i.filename.rstrip("/")
    names.add(n)
    st = os.lstat(os.path.join(src, n))
    mode = i.external_attr >> 16
    assert stat.S_IMODE(mode) == stat.S_IMODE(st.st_mode) or stat.S_ISLNK(st.st_mode), (n, oct(mode), oct(st.st_mode))
    if stat.S_ISREG(st.st_mode):
        assert z.read(i) == open(os.path.join(src, n), "rb").read(), n
    elif stat.S_ISLNK(st.st_mode):
        assert z.read(i).decode() == os.readlink(os.path.join(src, n)), n
want = set()
for d, dirs, files in os.walk(os.path.join(src, "docs")):
    for x in dirs + files:
        want.add(os.path.relpath(os.path.join(d, x), src))
want.add("docs")
assert names == want, (sorted(names ^ want))
EOF
ok "tar and zip downloads equal the source (contents, modes, times)"

expect 413 POST "/api/v1/devices/$DEV/download" $(bearer "$ANA") \
    $(jbody "{\"paths\":[\"$SRC\"],\"format\":\"tar\"}")
[[ $(jq .max_bytes "$T/body") == 2097152 && $(jq .bytes "$T/body") -gt 3000000 ]] \
    || fail "413 without the total and the cap: $(cat "$T/body")"
expect 404 POST "/api/v1/devices/$DEV/download" $(bearer "$ANA") \
    $(jbody "{\"paths\":[\"$SRC/nothing\"],\"format\":\"tar\"}")
expect 400 POST "/api/v1/devices/$DEV/download" $(bearer "$ANA") \
    $(jbody "{\"paths\":[\"$SRC/docs\"],\"format\":\"rar\"}")
ok "the size cap answers 413 with the total and the cap"

# ------------------------------------------------------------ refusals
BOB=$(login bob "$BOB_PW" "${BOB_RC[0]}")
expect 403 GET "/api/v1/devices/$DEV/versions" $(bearer "$BOB")
expect 403 POST "/api/v1/devices/$DEV/download" $(bearer "$BOB") \
    $(jbody "{\"paths\":[\"$SRC/docs\"],\"format\":\"tar\"}")
expect 403 GET "/api/v1/devices/$SHARED/versions" $(bearer "$ANA")
expect 403 POST "/api/v1/devices/$SHARED/download" $(bearer "$ANA") \
    $(jbody "{\"paths\":[\"$SRC/docs\"],\"format\":\"tar\"}")
expect 403 POST "/api/v1/devices/$DEV/unlock" $(bearer "$ANA") $(jbody "{\"escrow_passphrase\":\"$ESCROW\"}")
ok "another user and a shared device are refused"

# ------------------------------------------------------------ admin, escrow
expect 200 GET "/api/v1/devices/$DEV/versions" $(bearer "$ADMIN")
expect 409 POST "/api/v1/devices/$DEV/download" $(bearer "$ADMIN") \
    $(jbody "{\"paths\":[\"$SRC/docs\"],\"format\":\"tar\"}")
code_is key_unavailable
grep -q "escrow passphrase" "$T/body" || fail "409 does not say how: $(cat "$T/body")"
expect 403 POST "/api/v1/devices/$DEV/unlock" $(bearer "$ADMIN") $(jbody '{"escrow_passphrase":"not it"}')
expect 200 POST "/api/v1/devices/$DEV/unlock" $(bearer "$ADMIN") $(jbody "{\"escrow_passphrase\":\"$ESCROW\"}")
expect 200 POST "/api/v1/devices/$DEV/download" $(bearer "$ADMIN") \
    $(jbody "{\"paths\":[\"$SRC/docs/deep\",\"$SRC/docs/n2.txt\"],\"format\":\"tar\"}")
mkdir -p "$T/x-admin" && tar -xf "$T/body" -C "$T/x-admin"
treecmp "$SRC/docs/deep" "$T/x-admin/deep"
cmp "$SRC/docs/n2.txt" "$T/x-admin/n2.txt" || fail "admin download: n2.txt"
expect 409 GET "/api/v1/devices/$SHARED/versions/latest/tree" $(bearer "$ADMIN")
expect 200 POST "/api/v1/devices/$SHARED/unlock" $(bearer "$ADMIN") $(jbody "{\"escrow_passphrase\":\"$ESCROW\"}")
expect 200 GET "/api/v1/devices/$SHARED/versions/latest/tree" $(bearer "$ADMIN") -G --data-urlencode "path=$SRC/docs"
ok "an admin unlocks with the escrow passphrase (wrong one refused) and downloads"

# ------------------------------------------------------------ password change
NEW_PW="ana new password $RANDOM"
expect 403 POST /api/v1/me/password $(bearer "$ANA") $(jbody "{\"old\":\"wrong one\",\"new\":\"$NEW_PW\"}")
expect 200 POST /api/v1/me/password $(bearer "$ANA") $(jbody "{\"old\":\"$ANA_PW\",\"new\":\"$NEW_PW\"}")
[[ $(jq .rewrapped "$T/body") == 1 ]] || fail "password change: $(cat "$T/body")"
expect 200 GET "/api/v1/devices/$DEV/versions/latest/tree" $(bearer "$ANA")
expect 401 POST /api/v1/login $(jbody "{\"username\":\"ana\",\"password\":\"$ANA_PW\"}")
ANA2=$(login ana "$NEW_PW" "${ANA_RC[1]}")
expect 200 POST "/api/v1/devices/$DEV/download" $(bearer "$ANA2") \
    $(jbody "{\"paths\":[\"$SRC/docs\"],\"format\":\"tar\"}")
mkdir -p "$T/x-new" && tar -xf "$T/body" -C "$T/x-new"
treecmp "$SRC/docs" "$T/x-new/docs"
ok "a password change re-wraps: download after a login with the new password"

# ------------------------------------------------------------ reset, rewrap
RESET_PW="ana reset password $RANDOM"
expect 200 POST /api/v1/users/ana/reset-password $(bearer "$ADMIN") $(jbody "{\"password\":\"$RESET_PW\"}")
expect 401 GET "/api/v1/devices/$DEV/versions" $(bearer "$ANA2")
ANA3=$(login ana "$RESET_PW" "${ANA_RC[2]}")
expect 409 GET "/api/v1/devices/$DEV/versions/latest/tree" $(bearer "$ANA3")
code_is key_unavailable
grep -q "rewrap" "$T/body" || fail "409 after a reset does not say rewrap: $(cat "$T/body")"
expect 403 POST /api/v1/users/ana/rewrap $(bearer "$ADMIN") \
    $(jbody "{\"escrow_passphrase\":\"$ESCROW\",\"password\":\"not her password\"}")
expect 403 POST /api/v1/users/ana/rewrap $(bearer "$ADMIN") \
    $(jbody "{\"escrow_passphrase\":\"wrong\",\"password\":\"$RESET_PW\"}")
expect 200 POST /api/v1/users/ana/rewrap $(bearer "$ADMIN") \
    $(jbody "{\"escrow_passphrase\":\"$ESCROW\",\"password\":\"$RESET_PW\"}")
[[ $(jq .rewrapped "$T/body") == 1 ]] || fail "rewrap: $(cat "$T/body")"
ANA4=$(login ana "$RESET_PW" "${ANA_RC[3]}")
expect 200 POST "/api/v1/devices/$DEV/download" $(bearer "$ANA4") \
    $(jbody "{\"paths\":[\"$SRC/docs\"],\"format\":\"zip\"}")
ok "a reset drops the owner wrap (409); rewrap at the desk restores it"

# ------------------------------------------------------------ restore records
expect 201 POST "/api/v1/devices/$DEV/restores" $(bearer "$ANA4") \
    $(jbody "{\"snapshot\":\"latest\",\"paths\":[\"$SRC/docs\"],\"target\":\"/tmp/r\"}")
RID=$(jq -r .restore_id "$T/body")
[[ $RID =~ ^[0-9a-f]{32}$ ]] || fail "restore id: $RID"
expect 404 POST "/api/v1/restores/$RID/finish" $(bearer "$BOB") $(jbody '{"state":"done"}')
expect 204 POST "/api/v1/restores/$RID/finish" $(bearer "$ANA4") \
    $(jbody '{"state":"done","files":24,"bytes":5000,"errors":0}')
expect 409 POST "/api/v1/restores/$RID/finish" $(bearer "$ANA4") $(jbody '{"state":"done"}')
expect 403 POST "/api/v1/devices/$DEV/restores" $(bearer "$BOB") \
    $(jbody "{\"snapshot\":\"latest\",\"paths\":[\"/\"],\"target\":\"/tmp/r\"}")
ok "restore records: started, finished once, bound to their caller"

# ------------------------------------------------------------ push restore
expect 403 GET "/api/v1/devices/$DEV/objects/snapshot" $(bearer "$LAB_TOKEN")
expect 201 POST /api/v1/push $(bearer "$ADMIN") \
    $(jbody "{\"source_device\":\"$DEV\",\"snapshot\":\"latest\",\"paths\":[\"$SRC/docs\"],\"target_device\":\"$SHARED\",\"target_dir\":\"/srv/restore\",\"wrapped_key\":\"b3BhcXVl\"}")
PUSH=$(jq -r .push_id "$T/body")
expect 200 GET "/api/v1/push?device=$DEV" $(bearer "$ADMIN")
[[ $(jq -r '.[0].state' "$T/body") == queued ]] || fail "push list: $(cat "$T/body")"
expect 200 GET "/api/v1/devices/$SHARED/push" $(bearer "$LAB_TOKEN")
[[ $(jq -r '.[0].wrapped_key' "$T/body") == b3BhcXVl && $(jq -r '.[0].push_id' "$T/body") == "$PUSH" ]] \
    || fail "the target's jobs: $(cat "$T/body")"
expect 403 GET "/api/v1/devices/$DEV/push" $(bearer "$LAB_TOKEN")
expect 200 GET "/api/v1/devices/$DEV/objects/snapshot" $(bearer "$LAB_TOKEN")
SOBJ=$(jq -r '.[0].name' "$T/body")
expect 200 GET "/api/v1/devices/$DEV/objects/snapshot/$SOBJ" $(bearer "$LAB_TOKEN")
expect 403 PUT "/api/v1/devices/$DEV/objects/snapshot/$SOBJ" $(bearer "$LAB_TOKEN") --data-binary @"$T/body"
expect 201 POST "/api/v1/devices/$DEV/restores" $(bearer "$LAB_TOKEN") \
    $(jbody "{\"snapshot\":\"latest\",\"paths\":[\"$SRC/docs\"],\"target\":\"/srv/restore\",\"push_id\":$PUSH}")
expect 204 POST "/api/v1/push/$PUSH/status" $(bearer "$LAB_TOKEN") $(jbody '{"state":"running"}')
expect 204 POST "/api/v1/push/$PUSH/status" $(bearer "$LAB_TOKEN") $(jbody '{"state":"done","files":24,"bytes":5000}')
expect 409 POST "/api/v1/push/$PUSH/status" $(bearer "$LAB_TOKEN") $(jbody '{"state":"running"}')
expect 403 GET "/api/v1/devices/$DEV/objects/snapshot" $(bearer "$LAB_TOKEN")
ok "push restore: the target reads (never writes) the source while the job runs"

# ------------------------------------------------------------ audit, logout
python3 - "$STATE/catalog.db" <<'EOF' || fail "audit log"
import sqlite3, sys
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
acts = {r[0] for r in db.execute("SELECT action FROM audit")}
need = {"escrow_unlock", "escrow_unlock_failed", "download", "download_finish",
        "download_refused", "password_change", "owner_wraps_dropped", "rewrap",
        "restore_start", "restore_finish", "push_create", "push_status"}
missing = need - acts
assert not missing, missing
EOF
expect 204 POST /api/v1/logout $(bearer "$ANA4")
grep -q "$ESCROW\|$ANA_PW\|$NEW_PW" "$T/cairnd.log" && fail "a secret is in the server log"
ok "audit log holds every act; no secret in the log"
