#!/usr/bin/env bash
# server_api.sh - the HTTP API of cairnd, end to end over real TLS on
# loopback, driven with curl (the public key pinned from the ready file):
# two-step login (TOTP codes from the independent oathtool), replays,
# recovery codes, lockout and unlock, departments and waves, enrolment
# rules, device archives (uploads checked against their names and
# structure, size caps, other devices' paths, no overwrite or delete,
# ranges), status and migration reports, metrics.
#
# Environment: CAIRND (the server), CAIRN (the tool, to make real archive
# objects).  Needs curl, jq and oathtool.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

[[ -n ${CAIRND:-} && -x $CAIRND ]] || fail "CAIRND is not set (path of cairnd)"
for t in curl jq oathtool; do
    command -v "$t" >/dev/null || fail "$t is needed"
done

# ------------------------------------------------------------ the server
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
PORT=$(free_port)
STATE=$T/state
mkdir -p "$STATE"
CONF=$T/cairnd.json
cat > "$CONF" <<EOF
{
  "listen_addr": "127.0.0.1",
  "listen_port": $PORT,
  "state_dir": "$STATE",
  "log_level": "info",
  "lockout_slow_after": 2,
  "lockout_lock_after": 5,
  "lockout_lock_secs": 900,
  "legacy_days": 60
}
EOF
ADMIN_PW=$T/admin.pw
ESCROW_PW=$T/escrow.pw
printf 'admin password 1\n' > "$ADMIN_PW"
printf 'escrow passphrase 1\n' > "$ESCROW_PW"

"$CAIRND" --config "$CONF" init --org "Test University" --admin root \
    --admin-password-file "$ADMIN_PW" --escrow-passphrase-file "$ESCROW_PW" \
    --json > "$T/init.json" 2> "$T/init.err" \
    || { cat "$T/init.err" >&2; fail "cairnd init"; }
ROOT_TOTP=$(jq -er '.totp_secret' "$T/init.json") \
    || fail "no TOTP secret in cairnd init --json: $(cat "$T/init.json")"

READY=$T/ready
"$CAIRND" --config "$CONF" serve --ready-file "$READY" \
    > "$T/cairnd.log" 2>&1 &
SRV_PID=$!
E2E_PIDS+=("$SRV_PID")
for _ in $(seq 100); do
    [[ -s $READY ]] && break
    kill -0 "$SRV_PID" 2>/dev/null || { cat "$T/cairnd.log" >&2; fail "cairnd died"; }
    sleep 0.1
done
[[ -s $READY ]] || fail "cairnd wrote no ready file"
# The ready file: "<url> <pin>".
read -r URL PIN < "$READY"
[[ $URL == https://127.0.0.1:$PORT && $PIN == sha256//* ]] \
    || fail "ready file: $(cat "$READY")"
say "cairnd at $URL, pin $PIN"

# ------------------------------------------------------------ helpers
# req METHOD PATH [curl args...]: the status code on stdout, the body in
# $T/body, the headers in $T/headers.
req() {
    local m=$1 p=$2 how
    shift 2
    how=(-X "$m")
    [[ $m == HEAD ]] && how=(-I)
    curl -sS -k --pinnedpubkey "$PIN" "${how[@]}" -o "$T/body" \
        -D "$T/headers" -w '%{http_code}' "$@" "$URL$p"
}
# expect CODE METHOD PATH [curl args...]
expect() {
    local want=$1 got
    shift
    got=$(req "$@") || fail "curl $*"
    [[ $got == "$want" ]] \
        || fail "$1 $2: want $want, got $got: $(head -c 400 "$T/body")"
}
# json: the JSON request body options
# json TEXT: curl options sending TEXT (from a file of its own).
json() {
    local f
    f=$(mktemp "$T/req.XXXXXX")
    printf '%s' "$1" > "$f"
    echo "--data-binary @$f"
}
bearer() { echo "--oauth2-bearer $1"; }
code_of() { jq -r '.code' "$T/body"; }
totp() { oathtool --totp -b "$1" ${2:+-N "$2"}; }

# login USER PWFILE SECRET [addr]: a full session token on stdout.
login() {
    local user=$1 pw tok
    pw=$(head -n1 "$2")
    expect 200 POST /api/v1/login ${4:+--interface $4} \
        -H 'Content-Type: application/json' \
        $(json "{\"username\":\"$user\",\"password\":\"$pw\"}")
    tok=$(jq -r .token "$T/body")
    [[ $(jq -r .stage "$T/body") == totp ]] || fail "stage after password"
    totp "$3" > "$T/last_code"
    expect 200 POST /api/v1/login/totp $(bearer "$tok") \
        $(json "{\"code\":\"$(cat "$T/last_code")\"}")
    [[ $(jq -r .stage "$T/body") == full ]] || fail "stage after TOTP"
    echo "$tok"
}

# ------------------------------------------------------------ login
expect 200 GET /healthz
expect 401 POST /api/v1/login $(json '{"username":"root","password":"nope nope"}')
[[ $(code_of) == unauthenticated ]] || fail "wrong password code"
expect 401 POST /api/v1/login --interface 127.0.0.5 $(json '{"username":"nobody","password":"nope nope"}')
expect 400 POST /api/v1/login $(json '{"username":"root"')
expect 400 POST /api/v1/login $(json '{"username":"root","password":"x","extra":1}')
expect 400 POST /api/v1/login $(json '{"username":"root","password":5}')
ok "wrong passwords, unknown users, malformed bodies refused"

pw=$(head -n1 "$ADMIN_PW")
expect 200 POST /api/v1/login $(json "{\"username\":\"root\",\"password\":\"$pw\"}")
PARTIAL=$(jq -r .token "$T/body")
grep -qi '^set-cookie: cairn_session=.*HttpOnly.*Secure.*SameSite=Strict' \
    "$T/headers" || fail "no proper session cookie"
[[ $(jq -r .csrf "$T/body") != null ]] || fail "no csrf token"
expect 401 GET /api/v1/me $(bearer "$PARTIAL")
[[ $(code_of) == totp_required ]] || fail "password-only session: $(cat "$T/body")"
expect 401 POST /api/v1/login/totp $(bearer "$PARTIAL") $(json '{"code":"000000"}')
expect 204 POST /api/v1/logout $(bearer "$PARTIAL")
expect 401 POST /api/v1/login/totp $(bearer "$PARTIAL") $(json '{"code":"000000"}')
ok "a password-only session may only give TOTP or log out"

# A cookie session (the web console's): a change needs the X-CSRF-Token the
# login answered with; without it, or with another, it is refused.
expect 200 POST /api/v1/login $(json "{\"username\":\"root\",\"password\":\"$pw\"}")
CK=$(grep -i '^set-cookie: cairn_session=' "$T/headers" \
    | sed -E 's/^[Ss]et-[Cc]ookie: (cairn_session=[^;]*).*/\1/' | tr -d '\r')
CSRF=$(jq -r .csrf "$T/body")
[[ -n $CK && -n $CSRF ]] || fail "no cookie or csrf token to test with"
expect 403 POST /api/v1/logout -H "Cookie: $CK"
expect 403 POST /api/v1/logout -H "Cookie: $CK" -H "X-CSRF-Token: not-$CSRF"
expect 204 POST /api/v1/logout -H "Cookie: $CK" -H "X-CSRF-Token: $CSRF"
expect 401 POST /api/v1/logout -H "Cookie: $CK" -H "X-CSRF-Token: $CSRF"
ok "cookie sessions need the CSRF token for changes"

ADMIN=$(login root "$ADMIN_PW" "$ROOT_TOTP")
expect 200 GET /api/v1/me $(bearer "$ADMIN")
[[ $(jq -r .role "$T/body") == admin ]] || fail "root is not admin"
# The same code again, in a new session: refused.
USED=$(cat "$T/last_code")
expect 200 POST /api/v1/login $(json "{\"username\":\"root\",\"password\":\"$pw\"}")
P2=$(jq -r .token "$T/body")
expect 401 POST /api/v1/login/totp $(bearer "$P2") $(json "{\"code\":\"$USED\"}")
ok "login with password and TOTP; a replayed code is refused"

# ------------------------------------------------------------ organisation
expect 201 POST /api/v1/departments $(bearer "$ADMIN") \
    $(json '{"name":"Physics","wave_start":"2099-01-01T08:00:00Z"}')
expect 201 POST /api/v1/departments $(bearer "$ADMIN") \
    $(json '{"name":"Library","wave_start":null}')
expect 409 POST /api/v1/departments $(bearer "$ADMIN") $(json '{"name":"Physics"}')
expect 400 POST /api/v1/departments $(bearer "$ADMIN") \
    $(json '{"name":"Chem","wave_start":"tomorrow"}')
expect 200 GET /api/v1/departments $(bearer "$ADMIN")
[[ $(jq -r '.[] | select(.name=="Physics") | .wave_start' "$T/body") == 2099-01-01T08:00:00Z ]] \
    || fail "department list: $(cat "$T/body")"

ANA_PW=$T/ana.pw
printf 'ana password 1\n' > "$ANA_PW"
expect 201 POST /api/v1/users $(bearer "$ADMIN") \
    $(json "{\"username\":\"ana\",\"password\":\"$(head -n1 "$ANA_PW")\",\"department\":\"Physics\",\"role\":\"user\"}")
ANA_TOTP=$(jq -r .totp_secret "$T/body")
grep -q '^otpauth://totp/' <<<"$(jq -r .totp_uri "$T/body")" || fail "no totp_uri"
mapfile -t ANA_REC < <(jq -r '.recovery_codes[]' "$T/body")
[[ ${#ANA_REC[@]} -ge 5 ]] || fail "no recovery codes"
expect 409 POST /api/v1/users $(bearer "$ADMIN") \
    $(json "{\"username\":\"ana\",\"password\":\"another one\",\"department\":\"Physics\",\"role\":\"user\"}")
expect 404 POST /api/v1/users $(bearer "$ADMIN") \
    $(json '{"username":"bob","password":"bob password","department":"Nowhere","role":"user"}')
expect 200 GET /api/v1/users $(bearer "$ADMIN")
jq -e '.[] | select(.username=="ana")' "$T/body" >/dev/null || fail "user list"
grep -q totp_secret "$T/body" && fail "the user list shows TOTP secrets"
ANA=$(login ana "$ANA_PW" "$ANA_TOTP")
expect 403 GET /api/v1/users $(bearer "$ANA")
expect 200 GET /api/v1/org $(bearer "$ANA")
[[ $(jq -r .escrow_public "$T/body" | base64 -d | wc -c) -eq 32 ]] \
    || fail "org: $(cat "$T/body")"
ok "departments, users; admin routes refuse a user"

# Recovery codes: once each.
anapw=$(head -n1 "$ANA_PW")
expect 200 POST /api/v1/login $(json "{\"username\":\"ana\",\"password\":\"$anapw\"}")
P3=$(jq -r .token "$T/body")
expect 200 POST /api/v1/login/totp $(bearer "$P3") \
    $(json "{\"recovery_code\":\"${ANA_REC[0]}\"}")
expect 200 POST /api/v1/login $(json "{\"username\":\"ana\",\"password\":\"$anapw\"}")
P4=$(jq -r .token "$T/body")
expect 401 POST /api/v1/login/totp $(bearer "$P4") \
    $(json "{\"recovery_code\":\"${ANA_REC[0]}\"}")
ok "a recovery code works once"

# ------------------------------------------------------------ lockout
# From other loopback addresses, so root's and ana's logins stay free.
LOCK_PW=$T/lock.pw
printf 'locky password\n' > "$LOCK_PW"
expect 201 POST /api/v1/users $(bearer "$ADMIN") \
    $(json '{"username":"locky","password":"locky password","department":"Library","role":"user"}')
bad=$(json '{"username":"locky","password":"wrong password"}')
# slow_after 2: after 2 failures 1 s, after 3 2 s, after 4 4 s; lock at 5.
expect 401 POST /api/v1/login --interface 127.0.0.2 $bad
expect 401 POST /api/v1/login --interface 127.0.0.2 $bad
sleep 1.1
expect 401 POST /api/v1/login --interface 127.0.0.2 $bad
expect 429 POST /api/v1/login --interface 127.0.0.2 $bad
[[ $(code_of) == too_many ]] || fail "slow-down code"
grep -qi '^retry-after: [0-9]' "$T/headers" || fail "no Retry-After"
sleep 2.1
expect 401 POST /api/v1/login --interface 127.0.0.2 $bad
sleep 4.1
expect 401 POST /api/v1/login --interface 127.0.0.2 $bad
# Locked now: even the right password, from a fresh address, is refused.
good=$(json '{"username":"locky","password":"locky password"}')
expect 423 POST /api/v1/login --interface 127.0.0.3 $good
[[ $(code_of) == locked ]] || fail "lock code"
# And that address is slowed down too, whoever it tries.
expect 423 POST /api/v1/login --interface 127.0.0.2 \
    $(json "{\"username\":\"ana\",\"password\":\"$anapw\"}")
expect 200 POST /api/v1/users/locky/unlock $(bearer "$ADMIN")
[[ $(jq -r .locked "$T/body") == false ]] || fail "unlock"
expect 200 POST /api/v1/login --interface 127.0.0.3 $good
ok "failed logins slow down then lock (account and address); admin unlock"

# Disable and password reset revoke sessions.
LOCKY=$(jq -r .token "$T/body")
expect 200 POST /api/v1/users/locky/disable $(bearer "$ADMIN")
expect 401 POST /api/v1/login/totp $(bearer "$LOCKY") $(json '{"code":"123456"}')
expect 401 POST /api/v1/login --interface 127.0.0.4 $good
expect 200 POST /api/v1/users/locky/enable $(bearer "$ADMIN")
expect 200 POST /api/v1/users/locky/reset-password $(bearer "$ADMIN") \
    $(json '{"password":"new locky password"}')
expect 401 POST /api/v1/login --interface 127.0.0.4 $good
expect 200 POST /api/v1/login --interface 127.0.0.6 \
    $(json '{"username":"locky","password":"new locky password"}')
ok "disable, enable, reset-password"

# ------------------------------------------------------------ enrolment
# A real archive made by cairn: its config, key file and objects.
LOCAL=$T/local
mkdir -p "$T/data"
head -c 3000000 /dev/urandom > "$T/data/big"
for i in $(seq 20); do echo "file $i" > "$T/data/f$i"; done
"$CAIRN" -r "$LOCAL" --password-file "$PW" init >/dev/null
"$CAIRN" -r "$LOCAL" --password-file "$PW" backup "$T/data" >/dev/null
b64() { base64 -w0 "$1"; }
ARCHIVE_ID=$(dd if="$LOCAL/config" bs=1 skip=8 count=32 status=none | base64 -w0)
CONFIG=$(b64 "$LOCAL/config")
keyfiles=("$LOCAL"/keys/*)
KEYFILE=${keyfiles[0]}
WRAP_OWNER=$(b64 "$KEYFILE")
{ printf 'CRNX\001\000\000\000'; head -c 140 /dev/urandom; } > "$T/escrow.box"
WRAP_ESCROW=$(b64 "$T/escrow.box")
enrol_body() { # category department [extra json]
    json "{\"name\":\"host-$1\",\"category\":\"$1\",\"department\":\"$2\",\"archive_id\":\"$ARCHIVE_ID\",\"config\":\"$CONFIG\",\"wrap_escrow\":\"$WRAP_ESCROW\"${3:-}}"
}
OWN=",\"wrap_owner\":\"$WRAP_OWNER\""

expect 403 POST /api/v1/devices $(bearer "$ANA") $(enrol_body personal Physics "$OWN")
[[ $(code_of) == wave_not_started ]] || fail "wave code: $(cat "$T/body")"
[[ $(jq -r .starts_at "$T/body") == 2099-01-01T08:00:00Z ]] || fail "starts_at"
expect 403 POST /api/v1/devices $(bearer "$ADMIN") $(enrol_body shared Library)
[[ $(jq -r .starts_at "$T/body") == "not scheduled" ]] || fail "not scheduled"
expect 200 PATCH /api/v1/departments/Physics $(bearer "$ADMIN") \
    $(json '{"wave_start":"2020-01-01T00:00:00+01:00"}')
[[ $(jq -r .wave_start "$T/body") == 2019-12-31T23:00:00Z ]] || fail "wave patch"
expect 400 POST /api/v1/devices $(bearer "$ANA") $(enrol_body personal Physics)
expect 400 POST /api/v1/devices $(bearer "$ANA") \
    $(enrol_body personal Physics ",\"wrap_owner\":\"bm90IGEga2V5IGZpbGU=\"")
expect 400 POST /api/v1/devices $(bearer "$ANA") \
    $(json "{\"name\":\"x\",\"category\":\"personal\",\"department\":\"Physics\",\"archive_id\":\"AAAA\",\"config\":\"$CONFIG\",\"wrap_escrow\":\"$WRAP_ESCROW\"$OWN}")
expect 400 POST /api/v1/devices $(bearer "$ANA") \
    $(enrol_body personal Physics "$OWN,\"colour\":\"red\"")
expect 201 POST /api/v1/devices $(bearer "$ANA") $(enrol_body personal Physics "$OWN")
DEV1=$(jq -r .device_id "$T/body")
TOK1=$(jq -r .token "$T/body")
[[ $TOK1 == cd_$DEV1.* ]] || fail "device token form: $TOK1"
expect 403 POST /api/v1/devices $(bearer "$ANA") $(enrol_body shared Physics)
expect 400 POST /api/v1/devices $(bearer "$ADMIN") $(enrol_body shared Physics "$OWN")
expect 201 POST /api/v1/devices $(bearer "$ADMIN") $(enrol_body shared Physics)
DEV2=$(jq -r .device_id "$T/body")
TOK2=$(jq -r .token "$T/body")
expect 200 GET /api/v1/devices/$DEV1/wraps $(bearer "$ANA")
[[ $(jq -r .wrap_owner "$T/body") == "$WRAP_OWNER" ]] || fail "wrap_owner back"
[[ $(jq -r .wrap_escrow "$T/body") == null ]] || fail "owner sees escrow wrap"
expect 403 GET /api/v1/devices/$DEV2/wraps $(bearer "$ANA")
ok "enrolment: waves, categories, field checks, wraps"

# ------------------------------------------------------------ archives
D1=/api/v1/devices/$DEV1/objects
dev1() { bearer "$TOK1"; }
expect 401 GET $D1/pack
expect 401 GET $D1/pack $(bearer "cd_$DEV1.wrongwrongwrong")
# People read (never write) what they may restore: Ana her personal
# device, not the shared one; an admin any device.
expect 200 GET $D1/pack $(bearer "$ANA")
expect 403 GET /api/v1/devices/$DEV2/objects/pack $(bearer "$ANA")
expect 200 GET /api/v1/devices/$DEV2/objects/pack $(bearer "$ADMIN")
expect 403 PUT $D1/config/config $(bearer "$ANA") --data-binary @"$LOCAL/config"
expect 200 GET $D1/pack $(dev1)
[[ $(jq length "$T/body") == 0 ]] || fail "fresh archive lists packs"
expect 403 GET /api/v1/devices/$DEV2/objects/pack $(dev1)

# The config was stored at enrolment: the same again is fine, another not.
expect 200 PUT $D1/config/config $(dev1) --data-binary @"$LOCAL/config"
head -c 100 /dev/urandom > "$T/otherconfig"
expect 409 PUT $D1/config/config $(dev1) --data-binary @"$T/otherconfig"
expect 200 GET $D1/config/config $(dev1)
cmp -s "$T/body" "$LOCAL/config" || fail "config read back"

mapfile -t PACKS < <(find "$LOCAL/data" -type f -name '[0-9a-f]*')
mapfile -t INDEXES < <(find "$LOCAL/index" -type f -name '[0-9a-f]*')
mapfile -t SNAPS < <(find "$LOCAL/snapshots" -type f -name '[0-9a-f]*')
[[ ${#PACKS[@]} -ge 1 && ${#INDEXES[@]} -ge 1 && ${#SNAPS[@]} -eq 1 ]] \
    || fail "local archive: ${#PACKS[@]} packs ${#INDEXES[@]} indexes ${#SNAPS[@]} snapshots"
SNAP=${SNAPS[0]}

# Out of order: an index naming packs not stored, a snapshot whose tree is
# in no index: both refused, nothing stored.
expect 400 PUT $D1/index/$(basename "${INDEXES[0]}") $(dev1) --data-binary @"${INDEXES[0]}"
expect 400 PUT $D1/snapshot/$(basename "$SNAP") $(dev1) --data-binary @"$SNAP"
expect 404 HEAD $D1/index/$(basename "${INDEXES[0]}") $(dev1)

P0=${PACKS[0]}
N0=$(basename "$P0")
WRONG=$(printf '%064d' 0)
expect 400 PUT $D1/pack/$WRONG $(dev1) --data-binary @"$P0"
expect 404 HEAD $D1/pack/$WRONG $(dev1)
expect 400 PUT $D1/pack/NOTHEX $(dev1) --data-binary @"$P0"
# Right name, wrong structure: a body that is not a pack.
head -c 5000 /dev/urandom > "$T/junk"
JN=$(sha256sum "$T/junk" | cut -d' ' -f1)
expect 400 PUT $D1/pack/$JN $(dev1) --data-binary @"$T/junk"
expect 404 HEAD $D1/pack/$JN $(dev1)
expect 404 PUT $D1/key/abc $(dev1) --data-binary @"$T/junk"
# An upload is written into the store as it comes: a refused one leaves no
# temporary object behind either.
LEFT=$(find "$STATE/objects/$DEV1" -name '.tmp-*' | wc -l)
[[ $LEFT -eq 0 ]] || fail "$LEFT temporary objects left by refused uploads"
ok "uploads not matching their name or structure are refused, nothing stored"

for p in "${PACKS[@]}"; do
    expect 201 PUT $D1/pack/$(basename "$p") $(dev1) --data-binary @"$p"
done
expect 200 PUT $D1/pack/$N0 $(dev1) --data-binary @"$P0"
# Overwrite with other bytes under the same name: refused, unchanged.
expect 400 PUT $D1/pack/$N0 $(dev1) --data-binary @"$T/junk"
expect 405 DELETE $D1/pack/$N0 $(dev1)
expect 200 GET $D1/pack/$N0 $(dev1)
cmp -s "$T/body" "$P0" || fail "pack read back"
# Another device may not write here.
expect 403 PUT $D1/pack/$N0 $(bearer "$TOK2") --data-binary @"$P0"
ok "packs stored, idempotent, no overwrite, no delete, no other device"

# Ranges and HEAD.
SIZE=$(stat -c %s "$P0")
expect 206 GET $D1/pack/$N0 $(dev1) -H 'Range: bytes=10-99'
dd if="$P0" bs=1 skip=10 count=90 status=none | cmp -s - "$T/body" || fail "range body"
grep -qi "^content-range: bytes 10-99/$SIZE" "$T/headers" || fail "Content-Range"
expect 206 GET $D1/pack/$N0 $(dev1) -H 'Range: bytes=-8'
tail -c 8 "$P0" | cmp -s - "$T/body" || fail "suffix range"
expect 416 GET $D1/pack/$N0 $(dev1) -H "Range: bytes=$SIZE-"
expect 200 HEAD $D1/pack/$N0 $(dev1)
grep -qi "^content-length: $SIZE" "$T/headers" || fail "HEAD Content-Length"
expect 200 POST $D1/pack/have $(dev1) \
    $(json "{\"names\":[\"$N0\",\"$WRONG\"]}")
[[ $(jq -c .have "$T/body") == "[\"$N0\"]" ]] || fail "have: $(cat "$T/body")"
expect 400 POST $D1/pack/have $(dev1) $(json '{"names":["../etc"]}')
ok "ranges, HEAD, have"

# Size caps: a snapshot over 1 MiB.
head -c $((1024 * 1024 + 1)) /dev/zero > "$T/huge"
HN=$(sha256sum "$T/huge" | cut -d' ' -f1)
expect 413 PUT $D1/snapshot/$HN $(dev1) --data-binary @"$T/huge"
# Without a length up front: caught while streaming.
expect 413 PUT $D1/snapshot/$HN $(dev1) -H 'Transfer-Encoding: chunked' \
    --data-binary @"$T/huge"
expect 404 HEAD $D1/snapshot/$HN $(dev1)
ok "oversized bodies are 413"

before=$(curl -sS -k --pinnedpubkey "$PIN" "$URL/metrics" | awk '/^cairn_objects_stored_total/ {print $2}')
for i in "${INDEXES[@]}"; do
    expect 201 PUT $D1/index/$(basename "$i") $(dev1) --data-binary @"$i"
done
expect 201 PUT $D1/snapshot/$(basename "$SNAP") $(dev1) --data-binary @"$SNAP"
expect 200 PUT $D1/snapshot/$(basename "$SNAP") $(dev1) --data-binary @"$SNAP"
after=$(curl -sS -k --pinnedpubkey "$PIN" "$URL/metrics" | awk '/^cairn_objects_stored_total/ {print $2}')
[[ $after -eq $((before + ${#INDEXES[@]} + 1)) ]] \
    || fail "metrics: objects stored $before -> $after"
expect 200 GET $D1/snapshot $(dev1)
[[ $(jq -r '.[0].name' "$T/body") == $(basename "$SNAP") ]] || fail "snapshot list"
ok "index objects and the snapshot stored; metrics count them"

# ------------------------------------------------------------ status
expect 204 POST /api/v1/devices/$DEV1/status $(dev1) \
    $(json '{"phase":"idle","files_selected":21,"bytes_selected":3000100,"files_todo":0,"bytes_todo":0,"errors":0,"next_backup":"2030-01-02T03:04:05+01:00"}')
expect 403 POST /api/v1/devices/$DEV2/status $(dev1) $(json '{"phase":"idle"}')
expect 400 POST /api/v1/devices/$DEV1/status $(dev1) $(json '{"files_todo":-1}')
expect 400 POST /api/v1/devices/$DEV1/status $(dev1) $(json '{"next_backup":"soon"}')
expect 200 GET /api/v1/devices $(bearer "$ADMIN")
[[ $(jq length "$T/body") == 2 ]] || fail "admin sees every device"
d1=$(jq -c ".[] | select(.id==\"$DEV1\")" "$T/body")
[[ $(jq -r .last_backup <<<"$d1") != null ]] || fail "no last_backup: $d1"
[[ $(jq -r .first_backup <<<"$d1") != null ]] || fail "no first_backup: $d1"
[[ $(jq -r .alert <<<"$d1") == ok ]] || fail "alert: $d1"
[[ $(jq -r .phase <<<"$d1") == idle ]] || fail "phase: $d1"
[[ $(jq -r .next_backup <<<"$d1") == 2030-01-02T02:04:05Z ]] || fail "next_backup: $d1"
[[ $(jq -r .owner <<<"$d1") == ana ]] || fail "owner: $d1"
[[ $(jq -r .bytes_stored <<<"$d1") -gt 0 ]] || fail "bytes_stored: $d1"
expect 200 GET "/api/v1/devices?category=shared" $(bearer "$ADMIN")
[[ $(jq -r '.[0].id' "$T/body") == "$DEV2" && $(jq length "$T/body") == 1 ]] || fail "category filter"
expect 200 GET "/api/v1/devices?alert=critical" $(bearer "$ADMIN")
[[ $(jq length "$T/body") == 0 ]] || fail "alert filter"
expect 200 GET /api/v1/devices $(bearer "$ANA")
[[ $(jq length "$T/body") == 1 && $(jq -r '.[0].id' "$T/body") == "$DEV1" ]] \
    || fail "a user sees only their devices"
expect 200 GET /api/v1/migration $(bearer "$ADMIN")
m1=$(jq -c ".[] | select(.id==\"$DEV1\")" "$T/body")
fb=$(date -d "$(jq -r .first_backup <<<"$m1")" +%s)
due=$(date -d "$(jq -r .legacy_due <<<"$m1")" +%s)
[[ $((due - fb)) -eq $((60 * 86400)) ]] || fail "legacy_due: $m1"
[[ $(jq -r .overdue <<<"$m1") == false ]] || fail "overdue: $m1"
expect 200 POST /api/v1/devices/$DEV1/legacy-cancelled $(bearer "$ADMIN")
[[ $(jq -r .cancelled_by "$T/body") == root ]] || fail "cancelled_by"
expect 403 POST /api/v1/devices/$DEV1/legacy-cancelled $(bearer "$ANA")
ok "status, filters, migration (first backup + 60 days), legacy cancelled"

# Re-categorise: shared needs no owner, personal needs one.
expect 400 PATCH /api/v1/devices/$DEV2 $(bearer "$ADMIN") $(json '{"category":"personal"}')
expect 200 PATCH /api/v1/devices/$DEV2 $(bearer "$ADMIN") \
    $(json '{"category":"personal","owner":"ana"}')
[[ $(jq -r .owner "$T/body") == ana ]] || fail "re-categorised owner"
expect 200 PATCH /api/v1/devices/$DEV2 $(bearer "$ADMIN") $(json '{"category":"shared"}')
[[ $(jq -r .owner "$T/body") == null ]] || fail "shared has no owner"
ok "re-categorise"

# ------------------------------------------------------------ replace
expect 201 POST /api/v1/devices $(bearer "$ANA") \
    $(enrol_body personal Physics "$OWN,\"replaces\":\"$DEV1\"")
DEV3=$(jq -r .device_id "$T/body")
TOK3=$(jq -r .token "$T/body")
expect 401 GET $D1/pack $(dev1)
expect 200 GET /api/v1/devices/$DEV3/objects/snapshot $(bearer "$TOK3")
[[ $(jq -r '.[0].name' "$T/body") == $(basename "$SNAP") ]] || fail "adopted archive"
expect 409 POST /api/v1/devices $(bearer "$ANA") \
    $(enrol_body personal Physics "$OWN,\"replaces\":\"$DEV1\"")
ok "a replacement adopts the archive; the old token is dead"

grep -q 'password 1' "$STATE"/catalog.db 2>/dev/null && fail "a password in the catalog"
expect 204 POST /api/v1/logout $(bearer "$ANA")
expect 401 GET /api/v1/me $(bearer "$ANA")
ok "logout"

# A clean stop, and nothing a sanitizer build complains about.
kill -TERM "$SRV_PID"
rc=0
wait "$SRV_PID" || rc=$?
[[ $rc -eq 0 ]] || { tail -n 30 "$T/cairnd.log" >&2; fail "cairnd exited with $rc after SIGTERM"; }
if grep -E 'runtime error|AddressSanitizer|LeakSanitizer' "$T/cairnd.log" >&2; then
    fail "sanitizer reports in the server's log"
fi
ok "clean stop on SIGTERM"
