# tests/e2e/lib.sh - shared helpers for the end-to-end scenarios.
#
# Sourced by every tests/e2e/*.sh after `set -euo pipefail`.  Environment:
#   CAIRN              the cairn binary under test (required)
#   CAIRN_SOURCE_ROOT  the source tree (default: two levels above this file)
#   CAIRN_SHARED       the shared folder with bench/gen-dataset (default:
#                      "$(git rev-parse --show-toplevel)/../shared")
#   CAIRN_E2E_KEEP=1   keep the temporary directory for a post-mortem
#
# After sourcing: $T is a fresh temporary directory (removed on exit, mounts
# below it unmounted first), $PW a password file, $REPO the archive path
# ($T/repo, not created).  cz ARGS... runs "$CAIRN" -r "$REPO" ARGS....

export LC_ALL=C
umask 022

E2E_NAME=$(basename "${BASH_SOURCE[1]:-$0}" .sh)
E2E_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TREECMP="$E2E_HERE/treecmp.py"

# Nothing from the caller's environment may point us at another archive.
unset CAIRN_REPOSITORY CAIRN_PASSWORD_FILE CAIRN_PASSWORD_COMMAND \
      CAIRN_NEW_PASSWORD_FILE

say() { printf '[%s] %s\n' "$E2E_NAME" "$*"; }
ok() { printf '[%s] ok: %s\n' "$E2E_NAME" "$*"; }
fail() {
    printf '\n[%s] FAIL: %s\n' "$E2E_NAME" "$*" >&2
    exit 1
}

[[ -n ${CAIRN:-} ]] || fail "CAIRN is not set (path of the cairn binary)"
[[ -x $CAIRN ]] || fail "CAIRN=$CAIRN is not an executable file"
CAIRN=$(cd "$(dirname "$CAIRN")" && pwd)/$(basename "$CAIRN")
CAIRN_SOURCE_ROOT=${CAIRN_SOURCE_ROOT:-$(cd "$E2E_HERE/../.." && pwd)}
command -v python3 >/dev/null || fail "python3 is needed"

# shared_dir: print the shared folder (bench tools), or fail.
shared_dir() {
    local d=${CAIRN_SHARED:-}
    if [[ -z $d ]]; then
        local top
        top=$(git -C "$CAIRN_SOURCE_ROOT" rev-parse --show-toplevel 2>/dev/null) \
            || top=$CAIRN_SOURCE_ROOT
        d=$top/../shared
    fi
    [[ -x $d/bench/gen-dataset ]] \
        || fail "gen-dataset not found in $d/bench (set CAIRN_SHARED to the shared folder)"
    (cd "$d" && pwd)
}

# ------------------------------------------------------------ temp dir
T=$(mktemp -d "${TMPDIR:-/tmp}/cairn-e2e-$E2E_NAME.XXXXXX")
E2E_MOUNTS=()
E2E_PIDS=()
e2e_cleanup() {
    local rc=$? p m
    for p in "${E2E_PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    for m in "${E2E_MOUNTS[@]}"; do umount -l "$m" 2>/dev/null || true; done
    if [[ ${CAIRN_E2E_KEEP:-0} == 1 ]]; then
        echo "[$E2E_NAME] kept $T" >&2
    else
        chmod -R u+rwX "$T" 2>/dev/null || true
        rm -rf "$T"
    fi
    if [[ $rc -eq 0 ]]; then
        echo "[$E2E_NAME] PASS"
    else
        echo "[$E2E_NAME] FAILED (exit $rc)" >&2
    fi
    exit "$rc"
}
trap e2e_cleanup EXIT
trap 'exit 130' INT TERM
chmod 755 "$T"

PW=$T/password
printf 'correct horse battery staple %s\n' "$E2E_NAME" > "$PW"
chmod 644 "$PW"
REPO=$T/repo
export CAIRN_PASSWORD_FILE=$PW
# Keep any client-side cache inside the temp dir.
export XDG_CACHE_HOME=$T/.cache

cz() { "$CAIRN" -r "$REPO" "$@"; }

# run NAME CMD...: run CMD with stdout to $T/NAME.out, stderr to $T/NAME.err
# and the exit code in $RC; never fails by itself.  A crash (signal) fails.
RC=0
run() {
    local name=$1
    shift
    RC=0
    "$@" > "$T/$name.out" 2> "$T/$name.err" || RC=$?
    if (( RC >= 128 )); then
        show "$name"
        fail "$name: '$*' was killed by signal $((RC - 128)) (crash)"
    fi
    return 0
}

# show NAME: print the captured output of run NAME (up to 40 lines each).
show() {
    echo "---- $1: stdout (first 40 lines)" >&2
    head -n 40 "$T/$1.out" >&2 || true
    echo "---- $1: stderr (first 40 lines)" >&2
    head -n 40 "$T/$1.err" >&2 || true
    echo "----" >&2
}

# expect_rc NAME WANT [WHAT]: the last run NAME exited with WANT.
expect_rc() {
    local name=$1 want=$2 what=${3:-$1}
    if [[ $RC -ne $want ]]; then
        show "$name"
        fail "$what: exit code $RC, expected $want"
    fi
    ok "$what: exit code $want"
}

# must NAME CMD...: run and expect exit code 0.
must() {
    local name=$1
    run "$@"
    expect_rc "$name" 0
}

# mentions NAME REGEX WHAT: stdout+stderr of run NAME match REGEX (ERE, -i).
mentions() {
    local name=$1 re=$2 what=$3
    # grep the files, not a pipe: with pipefail, grep -q quitting early
    # can kill the writer with SIGPIPE and turn a match into a failure.
    if ! grep -q -i -E -- "$re" "$T/$name.out" "$T/$name.err"; then
        show "$name"
        fail "$name: output does not mention $what (/$re/)"
    fi
    ok "$name mentions $what"
}

# mentions_fixed NAME STRING WHAT: stdout+stderr contain STRING literally.
mentions_fixed() {
    local name=$1 s=$2 what=$3
    if ! grep -q -F -- "$s" "$T/$name.out" "$T/$name.err"; then
        show "$name"
        fail "$name: output does not name $what ($s)"
    fi
    ok "$name names $what"
}

# json_lines NAME: every non-empty stdout line of run NAME is a JSON object
# with a string message_type.
json_lines() {
    python3 - "$T/$1.out" <<'EOF' || { show "$1"; fail "$1: stdout is not valid JSON lines"; }
import json, sys
n = 0
for i, line in enumerate(open(sys.argv[1], encoding="utf-8", errors="strict"), 1):
    if not line.strip():
        continue
    try:
        o = json.loads(line)
    except ValueError as e:
        sys.exit("line %d is not JSON (%s): %r" % (i, e, line[:200]))
    if not isinstance(o, dict) or not isinstance(o.get("message_type"), str):
        sys.exit("line %d has no string message_type: %r" % (i, line[:200]))
    n += 1
EOF
}

# jq_py NAME PYEXPR: evaluate PYEXPR with `msgs` = the list of JSON objects
# on stdout of run NAME, `by(t)` = those with message_type t, `last` = the last
# object; print the result (lists one item per line, True/False as 1/0).
jq_py() {
    python3 - "$T/$1.out" "$2" <<'EOF'
import json, sys
msgs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def by(t):
    return [m for m in msgs if m.get("message_type") == t]
last = msgs[-1] if msgs else {}
r = eval(sys.argv[2])
if isinstance(r, bool):
    print(1 if r else 0)
elif isinstance(r, (list, tuple)):
    for x in r:
        print(x)
elif r is None:
    pass
else:
    print(r)
EOF
}

# summary_field NAME KEY: KEY of the final summary message of run NAME.
summary_field() {
    local v
    v=$(jq_py "$1" "[m for m in by('summary')][-1].get('$2') if by('summary') else '__nosummary__'") \
        || { show "$1"; fail "$1: cannot parse JSON output"; }
    [[ $v != __nosummary__ ]] || { show "$1"; fail "$1: no summary message in --json output"; }
    [[ -n $v ]] || { show "$1"; fail "$1: summary has no field '$2'"; }
    printf '%s\n' "$v"
}

# snapshot_ids: ids of the snapshots in the archive, oldest first.
snapshot_ids() {
    run snapids cz --json snapshots
    expect_rc snapids 0 "snapshots --json" >&2
    json_lines snapids
    jq_py snapids "[m.get('id') for m in by('snapshot')]"
}

# treecmp EXPECTED ACTUAL [OPTIONS]: compare two trees (see treecmp.py).
treecmp() {
    local exp=$1 act=$2
    shift 2
    python3 "$TREECMP" "$@" "$exp" "$act" || fail "restored tree $act differs from $exp"
    ok "tree $act equals $exp"
}

# random_file PATH MIB: PATH with MIB MiB of incompressible data.
random_file() {
    head -c "$(( $2 * 1048576 ))" /dev/urandom > "$1"
}

is_root() { [[ $(id -u) -eq 0 ]]; }

say "cairn binary: $CAIRN; temp dir: $T"

# ------------------------------------------------------------ a cairnd
# For the scenarios of the server's people-facing side (restore_requests,
# audit, authz, secrets).  Needs CAIRND, curl, jq, oathtool, sqlite3.
#
# e2e_server_start: `cairnd init` (organisation "Test University", admin
# "root" in department "IT") and `cairnd serve` on a free loopback port
# with TLS.  Sets STATE (state dir), URL, PIN, SRV_PID, SRV_LOG,
# ROOT_PW_FILE, ROOT_TOTP, ESCROW_PW_FILE, and $T/totp (a TOTP command:
# $T/totp USER SECRET prints a code no earlier login of USER used, waiting
# for the next 30 s step when needed).  Every secret made is registered
# with secret_add.
e2e_server_start() {
    local t port conf
    [[ -n ${CAIRND:-} && -x ${CAIRND:-} ]] || fail "CAIRND is not set (path of cairnd)"
    for t in curl jq oathtool sqlite3; do
        command -v "$t" >/dev/null || fail "$t is needed"
    done
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    STATE=$T/state
    conf=$T/cairnd.json
    SRV_LOG=$T/cairnd.log
    mkdir -p "$STATE" "$T/errbodies"
    : > "$T/secrets.list"
    printf '{"listen_addr": "127.0.0.1", "listen_port": %s, "state_dir": "%s", "log_level": "debug"}\n' \
        "$port" "$STATE" > "$conf"
    ROOT_PW_FILE=$T/root.pw
    ESCROW_PW_FILE=$T/escrow.pw
    printf 'root pw %s%s\n' "$RANDOM" "$RANDOM" > "$ROOT_PW_FILE"
    printf 'escrow phrase %s%s\n' "$RANDOM" "$RANDOM" > "$ESCROW_PW_FILE"
    secret_add "$(head -n1 "$ROOT_PW_FILE")" "$(head -n1 "$ESCROW_PW_FILE")"
    "$CAIRND" --config "$conf" init --org "Test University" --admin root \
        --department IT --admin-password-file "$ROOT_PW_FILE" \
        --escrow-passphrase-file "$ESCROW_PW_FILE" --json \
        > "$T/init.json" 2> "$T/init.err" \
        || { cat "$T/init.err" >&2; fail "cairnd init"; }
    ROOT_TOTP=$(jq -er .totp_secret "$T/init.json") || fail "no TOTP secret from cairnd init"
    secret_add "$ROOT_TOTP"
    mapfile -t _rc < <(jq -r '.recovery_codes[]' "$T/init.json")
    secret_add "${_rc[@]}"
    "$CAIRND" --config "$conf" serve --ready-file "$T/ready" > "$SRV_LOG" 2>&1 &
    SRV_PID=$!
    E2E_PIDS+=("$SRV_PID")
    for _ in $(seq 100); do
        [[ -s $T/ready ]] && break
        kill -0 "$SRV_PID" 2>/dev/null || { cat "$SRV_LOG" >&2; fail "cairnd died"; }
        sleep 0.1
    done
    [[ -s $T/ready ]] || fail "cairnd wrote no ready file"
    read -r URL PIN < "$T/ready"
    cat > "$T/totp" <<'TOTP'
#!/usr/bin/env bash
# totp USER SECRET: a code for a step after the last one USER used.
set -euo pipefail
f=$(dirname "$0")/totp.$1
last=$(cat "$f" 2>/dev/null || echo 0)
while :; do
    now=$(date +%s)
    for k in 0 1; do
        s=$(( now / 30 + k ))
        if (( s > last )); then
            echo "$s" > "$f"
            exec oathtool --totp -b "$2" -N "@$(( s * 30 ))"
        fi
    done
    sleep $(( 30 - now % 30 ))
done
TOTP
    chmod +x "$T/totp"
    say "cairnd at $URL, pin $PIN"
}

# e2e_enrol_shared: after e2e_server_start, root logs in (its session in
# $T/admin.session), adds the department Labs (its wave already started)
# and enrols this computer as the shared device "lab-pc" (device file
# $T/device.json).  Sets ADMIN_SESSION, DEVFILE and DEV.
e2e_enrol_shared() {
    ADMIN_SESSION=$T/admin.session
    DEVFILE=$T/device.json
    must login env CAIRN_SESSION_FILE="$ADMIN_SESSION" "$CAIRN" login \
        --server "$URL" --pin "$PIN" --username root \
        --password-file "$ROOT_PW_FILE" --totp-command "$T/totp root $ROOT_TOTP"
    must dept env CAIRN_SESSION_FILE="$ADMIN_SESSION" "$CAIRN" admin \
        department add Labs --wave-start 2020-01-01
    must enrol env CAIRN_SESSION_FILE="$ADMIN_SESSION" CAIRN_DEVICE_FILE="$DEVFILE" \
        "$CAIRN" enrol --server "$URL" --pin "$PIN" --category shared \
        --department Labs --name lab-pc --json
    DEV=$(jq -r 'select(.device_id) | .device_id' "$T/enrol.out" | tail -n1)
    [[ -n $DEV ]] || { show enrol; fail "no device id from enrol"; }
}

# e2e_server_stop: SIGTERM; cairnd must exit 0 with no sanitizer report.
e2e_server_stop() {
    local rc=0
    kill -TERM "$SRV_PID"
    wait "$SRV_PID" || rc=$?
    [[ $rc -eq 0 ]] || { tail -n 30 "$SRV_LOG" >&2; fail "cairnd exited with $rc after SIGTERM"; }
    if grep -E 'runtime error|AddressSanitizer|LeakSanitizer' "$SRV_LOG" >&2; then
        fail "sanitizer reports in the server's log"
    fi
    ok "cairnd stopped cleanly"
}

# api METHOD PATH [curl args...]: the status on stdout, the body in
# $T/body.  Bodies of answers >= 400 are also kept in $T/errbodies/ (what
# secrets_grep reads as "every error body the test saw").
api() {
    local m=$1 p=$2 how code
    shift 2
    how=(-X "$m")
    [[ $m == HEAD ]] && how=(-I)
    code=$(curl -sS -k --pinnedpubkey "$PIN" "${how[@]}" -o "$T/body" \
        -D "$T/headers" -w '%{http_code}' "$@" "$URL$p") || fail "curl $m $p"
    if [[ $code -ge 400 ]]; then
        cp "$T/body" "$(mktemp "$T/errbodies/$code.XXXXXX")"
    fi
    echo "$code"
}
# api_expect CODE METHOD PATH [curl args...]
api_expect() {
    local want=$1 got
    shift
    got=$(api "$@")
    [[ $got == "$want" ]] || fail "$1 $2: want $want, got $got: $(head -c 400 "$T/body")"
}
# api_json TEXT: curl options sending TEXT as the body.
api_json() {
    local f
    f=$(mktemp "$T/req.XXXXXX")
    printf '%s' "$1" > "$f"
    echo "-H Content-Type:application/json --data-binary @$f"
}
api_bearer() { echo "--oauth2-bearer $1"; }
# api_partial USER PWFILE: a password-only session token on stdout.
api_partial() {
    local tok
    api_expect 200 POST /api/v1/login \
        $(api_json "$(jq -nc --arg u "$1" --arg p "$(head -n1 "$2")" '{username:$u,password:$p}')") >&2
    tok=$(jq -r .token "$T/body")
    secret_add "$tok" "$(jq -r .csrf "$T/body")"
    echo "$tok"
}
# api_login USER PWFILE TOTP_SECRET: a full session token on stdout.
api_login() {
    local tok
    tok=$(api_partial "$1" "$2")
    api_expect 200 POST /api/v1/login/totp $(api_bearer "$tok") \
        $(api_json "{\"code\":\"$("$T/totp" "$1" "$3")\"}") >&2
    echo "$tok"
}
# api_user_add NAME DEPT [admin]: add a person (as $ROOT, a full admin
# session); its password in $T/NAME.pw, TOTP secret in $T/NAME.totp,
# recovery codes in $T/NAME.rec.
api_user_add() {
    printf '%s pw %s%s\n' "$1" "$RANDOM" "$RANDOM" > "$T/$1.pw"
    api_expect 201 POST /api/v1/users $(api_bearer "$ROOT") \
        $(api_json "$(jq -nc --arg u "$1" --arg p "$(head -n1 "$T/$1.pw")" --arg d "$2" --arg r "${3:-user}" \
            '{username:$u,password:$p,department:$d,role:$r}')")
    jq -r .totp_secret "$T/body" > "$T/$1.totp"
    jq -r '.recovery_codes[]' "$T/body" > "$T/$1.rec"
    secret_add "$(head -n1 "$T/$1.pw")" "$(cat "$T/$1.totp")"
    mapfile -t _rc < "$T/$1.rec"
    secret_add "${_rc[@]}"
}

# api_dept NAME: a department whose rollout wave has started.
api_dept() {
    api_expect 201 POST /api/v1/departments $(api_bearer "$ROOT") \
        $(api_json "{\"name\":\"$1\",\"wave_start\":\"2020-01-01T00:00:00Z\"}")
}

# api_enrol SESSION CATEGORY DEPARTMENT NAME: enrol a device over the API
# with the config and key file of a local archive ($T/local, made on first
# use); prints "DEVICE_ID TOKEN" (the token registered as a secret).
api_enrol() {
    local cfg aid own="" esc
    if [[ ! -d $T/local ]]; then
        "$CAIRN" -r "$T/local" init > /dev/null || fail "cairn init"
    fi
    cfg=$(base64 -w0 "$T/local/config")
    aid=$(dd if="$T/local/config" bs=1 skip=8 count=32 status=none | base64 -w0)
    { printf 'CRNX\001\000\000\000'; head -c 140 /dev/urandom; } > "$T/escrow.box"
    esc=$(base64 -w0 "$T/escrow.box")
    if [[ $2 == personal ]]; then
        local kf=("$T/local"/keys/*)
        own=",\"wrap_owner\":\"$(base64 -w0 "${kf[0]}")\""
    fi
    api_expect 201 POST /api/v1/devices $(api_bearer "$1") \
        $(api_json "{\"name\":\"$4\",\"category\":\"$2\",\"department\":\"$3\",\"archive_id\":\"$aid\",\"config\":\"$cfg\",\"wrap_escrow\":\"$esc\"$own}") >&2
    secret_add "$(jq -r .token "$T/body")"
    jq -r '.device_id + " " + .token' "$T/body"
}

# ------------------------------------------------------------ secrets
# secret_add VALUE...: remember secrets that must never appear in what the
# server writes (values under 6 characters would match by chance; refused).
secret_add() {
    local v
    for v in "$@"; do
        [[ ${#v} -ge 6 ]] || fail "secret_add: '$v' is too short to grep for"
        printf '%s\n' "$v" >> "$T/secrets.list"
    done
}

# secrets_grep STATE_DIR FILE...: grep the server's log and other FILEs,
# the audit table of STATE_DIR/catalog.db (dumped with sqlite3) and every
# error body api saw ($T/errbodies) for each secret in $T/secrets.list.
# Fails (returns 1, naming where) if one is found; fails too if there is
# nothing to look at or nothing to look for, so it cannot pass vacuously.
secrets_grep() {
    local state=$1 s where found=0 n
    shift
    sqlite3 -readonly "$state/catalog.db" \
        "SELECT id, time, user_id, device_id, addr, action, target, detail FROM audit" \
        > "$T/audit.dump" || { echo "secrets_grep: cannot dump the audit table" >&2; return 1; }
    [[ -s $T/audit.dump ]] || { echo "secrets_grep: the audit table is empty" >&2; return 1; }
    n=$(sort -u "$T/secrets.list" | wc -l)
    (( n > 0 )) || { echo "secrets_grep: no secrets to look for" >&2; return 1; }
    for f in "$@"; do
        [[ -s $f ]] || { echo "secrets_grep: $f is missing or empty" >&2; return 1; }
    done
    while IFS= read -r s; do
        [[ -n $s ]] || continue
        where=$(grep -rlF -- "$s" "$T/audit.dump" "$T/errbodies" "$@" 2>/dev/null || true)
        if [[ -n $where ]]; then
            echo "secrets_grep: a secret (${s:0:3}...) appears in: $(echo $where)" >&2
            found=1
        fi
    done < <(sort -u "$T/secrets.list")
    [[ $found -eq 0 ]] || return 1
    ok "none of $n secrets in the server's log, the audit log or $(ls "$T/errbodies" | wc -l) error bodies"
}

# secrets_selftest STATE_DIR LOG: secrets_grep must catch a secret planted
# in a copy of LOG (proves the grep can fail).
secrets_selftest() {
    local planted=$T/planted.log
    cp "$2" "$planted"
    printf 'leak: %s\n' "$(sort -u "$T/secrets.list" | shuf -n1)" >> "$planted"
    if secrets_grep "$1" "$planted" 2>/dev/null; then
        fail "secrets_grep did not catch a planted secret"
    fi
    rm -f "$planted"
    ok "secrets_grep catches a planted secret"
}
