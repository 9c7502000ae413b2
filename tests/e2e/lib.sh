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
