#!/usr/bin/env bash
# agent_settings.sh - settings the server pushes to agents (docs/API.md,
# "Agent settings"), against a real cairnd on loopback over TLS, driven
# with curl: administrators only; organisation and department scopes;
# strict keys and types (the agent's own table); locks; what one device
# gets (organisation, then its department on top, locks joined), its own
# only; every change audited, refusals not; and `cairn admin settings`
# when cairn has it.
#
# Environment: CAIRND (the server), CAIRN (the tool, to make a real
# archive to enrol).  Needs curl, jq and oathtool.
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
printf '{"listen_addr": "127.0.0.1", "listen_port": %s, "state_dir": "%s", "log_level": "warn"}\n' \
    "$PORT" "$STATE" > "$CONF"
ADMIN_PW=$T/admin.pw
printf 'admin password 1\n' > "$ADMIN_PW"
printf 'escrow passphrase 1\n' > "$T/escrow.pw"
chmod 600 "$ADMIN_PW" "$T/escrow.pw"

"$CAIRND" --config "$CONF" init --org "Test University" --admin root \
    --admin-password-file "$ADMIN_PW" --escrow-passphrase-file "$T/escrow.pw" \
    --json > "$T/init.json" 2> "$T/init.err" \
    || { cat "$T/init.err" >&2; fail "cairnd init"; }
ROOT_TOTP=$(jq -er '.totp_secret' "$T/init.json") || fail "no TOTP secret"

READY=$T/ready
"$CAIRND" --config "$CONF" serve --ready-file "$READY" > "$T/cairnd.log" 2>&1 &
E2E_PIDS+=("$!")
for _ in $(seq 100); do
    [[ -s $READY ]] && break
    kill -0 "${E2E_PIDS[0]}" 2>/dev/null || { cat "$T/cairnd.log" >&2; fail "cairnd died"; }
    sleep 0.1
done
[[ -s $READY ]] || fail "cairnd wrote no ready file"
read -r URL PIN < "$READY"
say "cairnd at $URL"

# ------------------------------------------------------------ helpers
# req METHOD PATH [curl args...]: the status on stdout, the body in $T/body.
req() {
    local m=$1 p=$2
    shift 2
    curl -sS -k --pinnedpubkey "$PIN" -X "$m" -o "$T/body" -w '%{http_code}' \
        "$@" "$URL$p"
}
# expect CODE METHOD PATH [curl args...]
expect() {
    local want=$1 got
    shift
    got=$(req "$@") || fail "curl $*"
    [[ $got == "$want" ]] \
        || fail "$1 $2: want $want, got $got: $(head -c 400 "$T/body")"
}
json() {
    local f
    f=$(mktemp "$T/req.XXXXXX")
    printf '%s' "$1" > "$f"
    echo "--data-binary @$f"
}
bearer() { echo "--oauth2-bearer $1"; }
# body_is JQ WANT: the last answer's jq expression equals WANT.
body_is() {
    local got
    got=$(jq -S -c "$1" "$T/body") || fail "jq $1: $(head -c 400 "$T/body")"
    [[ $got == "$2" ]] || fail "$1: want $2, got $got"
}
# refused JSON WORD: PUT of JSON on the organisation is a 400 naming WORD.
refused() {
    expect 400 PUT /api/v1/settings $(bearer "$ADMIN") $(json "$1")
    body_is .code '"bad_request"'
    grep -q -F -- "$2" "$T/body" || fail "refusal of $1 does not name $2: $(cat "$T/body")"
}
login() {
    local pw tok
    pw=$(head -n1 "$2")
    expect 200 POST /api/v1/login $(json "{\"username\":\"$1\",\"password\":\"$pw\"}")
    tok=$(jq -r .token "$T/body")
    expect 200 POST /api/v1/login/totp $(bearer "$tok") \
        $(json "{\"code\":\"$(oathtool --totp -b "$3")\"}")
    echo "$tok"
}

# ------------------------------------------------------------ people
expect 401 GET /api/v1/settings
ADMIN=$(login root "$ADMIN_PW" "$ROOT_TOTP")
expect 201 POST /api/v1/departments $(bearer "$ADMIN") \
    $(json '{"name":"Physics","wave_start":"2020-01-01T00:00:00Z"}')
expect 201 POST /api/v1/departments $(bearer "$ADMIN") \
    $(json '{"name":"Library","wave_start":"2020-01-01T00:00:00Z"}')
ANA_PW=$T/ana.pw
printf 'ana password 1\n' > "$ANA_PW"
expect 201 POST /api/v1/users $(bearer "$ADMIN") \
    $(json "{\"username\":\"ana\",\"password\":\"$(head -n1 "$ANA_PW")\",\"department\":\"Physics\",\"role\":\"user\"}")
ANA_TOTP=$(jq -r .totp_secret "$T/body")
# A fresh code for ana's login (root's code of this step is used).
sleep_to_next_step() { sleep $((31 - $(date +%s) % 30)); }
ANA=$(login ana "$ANA_PW" "$ANA_TOTP")

# ------------------------------------------------------------ admin only
expect 200 GET /api/v1/settings $(bearer "$ADMIN")
body_is '[.scope, .settings, .locked, .updated]' '["organisation",{},[],null]'
expect 403 GET /api/v1/settings $(bearer "$ANA")
expect 403 PUT /api/v1/settings $(bearer "$ANA") $(json '{"settings":{}}')
expect 403 GET /api/v1/departments/Physics/settings $(bearer "$ANA")
expect 403 PUT /api/v1/departments/Physics/settings $(bearer "$ANA") $(json '{"settings":{}}')
ok "only administrators read and set agent settings"

# ------------------------------------------------------------ strictness
refused '{"settings":{"colour":"red"}}' colour
refused '{"settings":{"frequency":"often"}}' frequency
refused '{"settings":{"frequency":-1}}' frequency
refused '{"settings":{"cpu_share":101}}' cpu_share
refused '{"settings":{"verify_at":"25:00"}}' verify_at
refused '{"settings":{"paths":["relative"]}}' 'paths[0]'
refused '{"settings":{"exclude":"*.iso"}}' exclude
refused '{"settings":{"default_excludes":"no"}}' default_excludes
refused '{"settings":{"pause_until":1}}' pause_until
refused '{"settings":{},"locked":["colour"]}' colour
refused '{"settings":{},"locked":["frequency","frequency"]}' frequency
refused '{"settings":{},"locked":"frequency"}' locked
refused '{"settings":{},"colour":1}' colour
refused '{"locked":[]}' settings
expect 200 GET /api/v1/settings $(bearer "$ADMIN")
body_is .settings '{}'
ok "unknown keys, wrong types and bounds are refused, naming the key"

# ------------------------------------------------------------ org, dept
expect 200 PUT /api/v1/settings $(bearer "$ADMIN") \
    $(json '{"settings":{"frequency":3600,"cpu_share":10,"exclude":["*.iso"],"verify_at":"02:30"},"locked":["frequency","exclude"]}')
body_is '[.scope, .settings.frequency, .settings.exclude, .locked, .updated_by]' \
    '["organisation",3600,["*.iso"],["frequency","exclude"],"root"]'
expect 200 GET /api/v1/settings $(bearer "$ADMIN")
body_is '[.settings.cpu_share, .settings.verify_at, (.updated != null)]' '[10,"02:30",true]'
expect 404 GET /api/v1/departments/Nowhere/settings $(bearer "$ADMIN")
expect 404 PUT /api/v1/departments/Nowhere/settings $(bearer "$ADMIN") $(json '{"settings":{}}')
expect 400 PUT /api/v1/departments/Physics/settings $(bearer "$ADMIN") \
    $(json '{"settings":{"settle":-2}}')
expect 200 PUT /api/v1/departments/Physics/settings $(bearer "$ADMIN") \
    $(json '{"settings":{"frequency":600,"settle":5,"paths":["/home"]},"locked":["settle"]}')
body_is '[.scope, .department, .settings.frequency, .locked]' '["department","Physics",600,["settle"]]'
ok "organisation and department settings are stored and read back"

# ------------------------------------------------------------ devices
LOCAL=$T/local
mkdir -p "$T/data"
echo hello > "$T/data/f"
"$CAIRN" -r "$LOCAL" --password-file "$PW" init >/dev/null
ARCHIVE_ID=$(dd if="$LOCAL/config" bs=1 skip=8 count=32 status=none | base64 -w0)
CONFIG=$(base64 -w0 "$LOCAL/config")
keyfiles=("$LOCAL"/keys/*)
WRAP_OWNER=$(base64 -w0 "${keyfiles[0]}")
{ printf 'CRNX\001\000\000\000'; head -c 140 /dev/urandom; } > "$T/escrow.box"
WRAP_ESCROW=$(base64 -w0 "$T/escrow.box")
enrol_body() { # category department [extra json]
    json "{\"name\":\"host-$1\",\"category\":\"$1\",\"department\":\"$2\",\"archive_id\":\"$ARCHIVE_ID\",\"config\":\"$CONFIG\",\"wrap_escrow\":\"$WRAP_ESCROW\"${3:-}}"
}
expect 201 POST /api/v1/devices $(bearer "$ANA") \
    $(enrol_body personal Physics ",\"wrap_owner\":\"$WRAP_OWNER\"")
DEV1=$(jq -r .device_id "$T/body")
TOK1=$(jq -r .token "$T/body")
expect 201 POST /api/v1/devices $(bearer "$ADMIN") $(enrol_body shared Library)
DEV2=$(jq -r .device_id "$T/body")
TOK2=$(jq -r .token "$T/body")

# The Physics device: the organisation's, Physics's on top, locks joined.
expect 200 GET /api/v1/devices/$DEV1/settings $(bearer "$TOK1")
body_is '[.device_id, .department]' "[\"$DEV1\",\"Physics\"]"
body_is .settings '{"cpu_share":10,"exclude":["*.iso"],"frequency":600,"paths":["/home"],"settle":5,"verify_at":"02:30"}'
body_is '.locked | sort' '["exclude","frequency","settle"]'
# The Library device: the organisation's only.
expect 200 GET /api/v1/devices/$DEV2/settings $(bearer "$TOK2")
body_is '[.department, .settings.frequency, .settings.settle, (.locked | sort)]' \
    '["Library",3600,null,["exclude","frequency"]]'
# A device reads its own only, and never writes.
expect 403 GET /api/v1/devices/$DEV2/settings $(bearer "$TOK1")
expect 403 GET /api/v1/settings $(bearer "$TOK1")
expect 403 PUT /api/v1/settings $(bearer "$TOK1") $(json '{"settings":{}}')
expect 401 GET /api/v1/devices/$DEV1/settings
expect 401 GET /api/v1/devices/$DEV1/settings $(bearer "cd_$DEV1.wrongwrongwrong")
# An administrator may look at any device's; a person not.
expect 200 GET /api/v1/devices/$DEV1/settings $(bearer "$ADMIN")
body_is .settings.frequency 600
expect 403 GET /api/v1/devices/$DEV1/settings $(bearer "$ANA")
expect 404 GET /api/v1/devices/0123456789abcdef0123456789abcdef/settings $(bearer "$ADMIN")
# Unlocking and emptying the department's: the organisation's show again.
expect 200 PUT /api/v1/departments/Physics/settings $(bearer "$ADMIN") \
    $(json '{"settings":{}}')
expect 200 GET /api/v1/devices/$DEV1/settings $(bearer "$TOK1")
body_is '[.settings.frequency, .settings.settle, (.locked | sort)]' \
    '[3600,null,["exclude","frequency"]]'
ok "a device gets the organisation's settings with its department's on top"

# ------------------------------------------------------------ audit
expect 200 GET "/api/v1/audit?action=settings_set" $(bearer "$ADMIN")
body_is '[.entries[] | .target] | sort' \
    '["department:Physics","department:Physics","organisation"]'
body_is '[.entries[] | select(.target == "organisation") | .user]' '["root"]'
body_is '[.entries[] | select(.target == "organisation") | .detail.settings.frequency]' '[3600]'
body_is '[.entries[] | select(.target == "organisation") | .detail.locked]' '[["frequency","exclude"]]'
ok "every change is audited (who, which scope, what); refusals are not"

# ------------------------------------------------------------ the CLI
ADMIN_ENV=(env CAIRN_SESSION_FILE="$T/admin.session")
sleep_to_next_step
must clilogin "${ADMIN_ENV[@]}" "$CAIRN" login --server "$URL" --pin "$PIN" \
    --username root --password-file "$ADMIN_PW" \
    --totp-command "oathtool --totp -b $ROOT_TOTP"
run clishow "${ADMIN_ENV[@]}" "$CAIRN" admin settings show --json
if true; then
    expect_rc clishow 0
    [[ $(jq -c '[.message_type, .settings.frequency]' "$T/clishow.out") == '["settings",3600]' ]] \
        || { show clishow; fail "admin settings show --json"; }
    must cliset "${ADMIN_ENV[@]}" "$CAIRN" admin settings set --department Physics \
        cpu_share=20 exclude='*.mp4' exclude='*.mkv' default_excludes=no \
        bandwidth_limit=1M --lock cpu_share --json
    [[ $(jq -c '[.settings.cpu_share, .settings.exclude, .settings.default_excludes, .settings.bandwidth_limit, .locked]' "$T/cliset.out") \
        == '[20,["*.mp4","*.mkv"],false,1048576,["cpu_share"]]' ]] \
        || { show cliset; fail "admin settings set --json"; }
    must cliunlock "${ADMIN_ENV[@]}" "$CAIRN" admin settings set --department Physics \
        --unlock cpu_share --unset exclude
    must clishow2 "${ADMIN_ENV[@]}" "$CAIRN" admin settings show --department Physics
    mentions clishow2 "cpu_share +- +20" "the unlocked cpu_share"
    ! grep -q '^exclude ' "$T/clishow2.out" || { show clishow2; fail "exclude not unset"; }
    run clibad "${ADMIN_ENV[@]}" "$CAIRN" admin settings set colour=red
    expect_rc clibad 2 "an unknown key"
    mentions clibad colour "the unknown key"
    run clibad2 "${ADMIN_ENV[@]}" "$CAIRN" admin settings set cpu_share=500
    expect_rc clibad2 2 "an out-of-range value"
    ok "cairn admin settings show and set"
fi
