#!/usr/bin/env bash
# authz: the authorization matrix (issue 4).  Every route of cairnd, each
# called by seven callers: nobody (no credentials), a password-only
# session (TOTP not given yet), a device token (ana's laptop), the owner
# (ana, Physics: owns the laptop, filed the request), another user (bob,
# Chemistry), a user of the same department (carl, Physics) and an
# administrator (root).  Expected per caller:
#   a    allowed: any answer but 401, 403 or 5xx (2xx, or a 4xx about the
#        request itself: 400, 404, 409 ...)
#   d    denied: 401 or 403
#   NNN  exactly that status (where "allowed" would say too little)
# The routes are read from the server's source (the route tables of
# server/*.c); a route the table below does not cover fails the test, so a
# new endpoint cannot escape the matrix.  To add one: a line in MATRIX.
# Rows run in order and may change state (requests get decided, logout
# ends sessions), so state-ending rows come last.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

e2e_server_start
ROOT=$(api_login root "$ROOT_PW_FILE" "$ROOT_TOTP")
api_dept Physics
api_dept Chemistry
api_user_add ana Physics
api_user_add carl Physics
api_user_add bob Chemistry
api_user_add zed Chemistry
ANA=$(api_login ana "$T/ana.pw" "$(cat "$T/ana.totp")")
CARL=$(api_login carl "$T/carl.pw" "$(cat "$T/carl.totp")")
BOB=$(api_login bob "$T/bob.pw" "$(cat "$T/bob.totp")")
PARTIAL=$(api_partial ana "$T/ana.pw")
read -r PDEV DTOK < <(api_enrol "$ANA" personal Physics ana-laptop)
read -r LAB _ < <(api_enrol "$ROOT" shared Physics lab-pc)
[[ -n $PDEV && -n $DTOK && -n $LAB ]] || fail "enrolment"
# Three requests of ana's for the lab PC: one to read, two to decide.
for i in 1 2 3; do
    api_expect 201 POST /api/v1/requests $(api_bearer "$ANA") \
        $(api_json "{\"device\":\"$LAB\",\"paths\":[\"/d$i\"],\"destination\":\"desk\",\"reason\":\"lost\"}")
    eval "REQ$i=$(jq -r .id "$T/body")"
done
NOID=$(printf '%032d' 0)
RQ="{\"device\":\"$LAB\",\"paths\":[\"/x\"],\"destination\":\"desk\",\"reason\":\"lost\"}"
D=/api/v1/devices/$PDEV

# ------------------------------------------------------------ the matrix
# METHOD | route pattern (as in the source) | path | body (- none, @FILE, or
# JSON) | none partial device owner other same admin
MATRIX=$(cat <<EOF
GET   | /healthz                                  | /healthz                               | -  | a a a a a a a
GET   | /metrics                                  | /metrics                               | -  | a a a a a a a
POST  | /api/v1/login                             | /api/v1/login                          | {} | a a a a a a a
POST  | /api/v1/login/totp                        | /api/v1/login/totp                     | {} | d a d a a a a
GET   | /api/v1/me                                | /api/v1/me                             | -  | d d d a a a a
POST  | /api/v1/me/password                       | /api/v1/me/password                    | {} | d d d a a a a
GET   | /api/v1/org                               | /api/v1/org                            | -  | d d d a a a a
GET   | /api/v1/departments                       | /api/v1/departments                    | -  | d d d d d d a
POST  | /api/v1/departments                       | /api/v1/departments                    | {"name":"Physics"} | d d d d d d 409
PATCH | /api/v1/departments/{}                    | /api/v1/departments/Physics            | {"wave_start":"2020-01-01T00:00:00Z"} | d d d d d d 200
GET   | /api/v1/users                             | /api/v1/users                          | -  | d d d d d d a
POST  | /api/v1/users                             | /api/v1/users                          | {} | d d d d d d 400
POST  | /api/v1/users/{}/{}                       | /api/v1/users/zed/unlock               | -  | d d d d d d 200
POST  | /api/v1/devices                           | /api/v1/devices                        | {} | d d d a a a a
GET   | /api/v1/devices                           | /api/v1/devices                        | -  | d d d a a a a
GET   | /api/v1/devices/{}/wraps                  | $D/wraps                               | -  | d d d a d d a
PATCH | /api/v1/devices/{}                        | $D                                     | {"category":"personal","owner":"ana"} | d d d d d d 200
POST  | /api/v1/devices/{}/legacy-cancelled       | $D/legacy-cancelled                    | -  | d d d d d d 200
GET   | /api/v1/migration                         | /api/v1/migration                      | -  | d d d d d d a
POST  | /api/v1/devices/{}/status                 | $D/status                              | {"phase":"idle"} | d d 204 d d d d
GET   | /api/v1/devices/{}/objects/{}             | $D/objects/pack                        | -  | d d 200 200 d d 200
POST  | /api/v1/devices/{}/objects/{}/have        | $D/objects/pack/have                   | {"names":[]} | d d 200 200 d d 200
GET   | /api/v1/devices/{}/objects/{}/{}          | $D/objects/config/config               | -  | d d 200 200 d d 200
PUT   | /api/v1/devices/{}/objects/{}/{}          | $D/objects/config/config               | @$T/local/config | d d 200 d d d d
GET   | /api/v1/devices/{}/settings               | $D/settings                            | -  | d d a d d d a
GET   | /api/v1/settings                          | /api/v1/settings                       | -  | d d d d d d a
PUT   | /api/v1/settings                          | /api/v1/settings                       | {} | d d d d d d a
GET   | /api/v1/departments/{}/settings           | /api/v1/departments/Physics/settings   | -  | d d d d d d a
PUT   | /api/v1/departments/{}/settings           | /api/v1/departments/Physics/settings   | {} | d d d d d d a
POST  | /api/v1/devices/{}/unlock                 | $D/unlock                              | {} | d d d d d d a
GET   | /api/v1/devices/{}/versions               | $D/versions                            | -  | d d d a d d a
GET   | /api/v1/devices/{}/versions/{}/tree       | $D/versions/latest/tree                | -  | d d d a d d a
GET   | /api/v1/devices/{}/versions/{}/search     | $D/versions/latest/search?q=x          | -  | d d d a d d a
POST  | /api/v1/devices/{}/download               | $D/download                            | {"snapshot":"latest","paths":["/"],"format":"tar"} | d d d a d d a
POST  | /api/v1/devices/{}/restores               | $D/restores                            | {"snapshot":"latest","paths":["/"],"target":"/tmp/r"} | d d d a d d a
POST  | /api/v1/restores/{}/finish                | /api/v1/restores/$NOID/finish          | {"state":"done"} | d d 404 404 404 404 404
POST  | /api/v1/push                              | /api/v1/push                           | {} | d d d d d d a
GET   | /api/v1/push                              | /api/v1/push                           | -  | d d d d d d a
GET   | /api/v1/devices/{}/push                   | $D/push                                | -  | d d 200 d d d d
POST  | /api/v1/push/{}/status                    | /api/v1/push/999999/status             | {"state":"running"} | d d 404 d d d d
POST  | /api/v1/requests                          | /api/v1/requests                       | $RQ | d d d 201 d 201 d
GET   | /api/v1/requests                          | /api/v1/requests                       | -  | d d d 200 200 200 200
GET   | /api/v1/requests/{}                       | /api/v1/requests/$REQ1                 | -  | d d d 200 d d 200
POST  | /api/v1/requests/{}/decline               | /api/v1/requests/$REQ2/decline         | {"reason":"no"} | d d d d d d 200
POST  | /api/v1/requests/{}/fulfil                | /api/v1/requests/$REQ3/fulfil          | {"how":"download"} | d d d d d d 200
GET   | /api/v1/audit                             | /api/v1/audit                          | -  | d d d d d d 200
POST  | /api/v1/logout                            | /api/v1/logout                         | -  | d 204 d 204 204 204 204
EOF
)
CALLERS=(none partial device owner other same admin)
declare -A TOKEN=([none]="" [partial]=$PARTIAL [device]=$DTOK [owner]=$ANA
                  [other]=$BOB [same]=$CARL [admin]=$ROOT)

# ------------------------------------------------------------ coverage
# Every route in the source, as "METHOD pattern".
python3 - "$CAIRN_SOURCE_ROOT/server" > "$T/routes" <<'PY'
import glob, re, sys
pat = re.compile(r'\{\s*"(GET|POST|PUT|PATCH|DELETE|HEAD)"\s*,\s*"(/[^"]*)"')
seen = set()
for f in sorted(glob.glob(sys.argv[1] + "/*.c")):
    for m in pat.finditer(open(f, encoding="utf-8").read()):
        seen.add("%s %s" % (m.group(1), m.group(2)))
print("\n".join(sorted(seen)))
PY
[[ $(wc -l < "$T/routes") -ge 20 ]] || fail "found only $(wc -l < "$T/routes") routes in the source"
while IFS='|' read -r m p _; do
    echo "$(xargs <<<"$m") $(xargs <<<"$p")"
done <<<"$MATRIX" | sort -u > "$T/covered"
missing=$(comm -23 "$T/routes" "$T/covered")
[[ -z $missing ]] || fail "routes the authorization matrix does not cover (add a line to MATRIX):
$missing"
ok "the matrix covers all $(wc -l < "$T/routes") routes of the server"

# ------------------------------------------------------------ run it
n=0
bad=0
while IFS='|' read -r m p path body want; do
    m=$(xargs <<<"$m")
    p=$(xargs <<<"$p")
    path=$(xargs <<<"$path")
    body=$(sed -E 's/^ +| +$//g' <<<"$body")
    read -r -a exp <<<"$want"
    [[ ${#exp[@]} -eq 7 ]] || fail "MATRIX line for $m $p has ${#exp[@]} expectations, not 7"
    if ! grep -qxF "$m $p" "$T/routes"; then
        say "skipped (not a route of this server): $m $p"
        continue
    fi
    args=()
    case $body in
        -) ;;
        @*) args=(--data-binary "$body") ;;
        *) printf '%s' "$body" > "$T/mbody"
           args=(-H Content-Type:application/json --data-binary "@$T/mbody") ;;
    esac
    for i in "${!CALLERS[@]}"; do
        who=${CALLERS[$i]}
        e=${exp[$i]}
        auth=()
        [[ -n ${TOKEN[$who]} ]] && auth=(--oauth2-bearer "${TOKEN[$who]}")
        got=$(api "$m" "$path" "${auth[@]}" "${args[@]}")
        n=$((n + 1))
        case $e in
            a) [[ $got -lt 500 && $got != 401 && $got != 403 ]] ;;
            d) [[ $got == 401 || $got == 403 ]] ;;
            *) [[ $got == "$e" ]] ;;
        esac || {
            echo "MISMATCH $m $path as $who: want $e, got $got: $(head -c 300 "$T/body")" >&2
            bad=$((bad + 1))
        }
        # A password-only session is told to finish the login.
        if [[ $who == partial && $e == d && $got == 401 ]] && \
           [[ $(jq -r .code "$T/body") != totp_required ]]; then
            echo "MISMATCH $m $path as partial: 401 but not totp_required" >&2
            bad=$((bad + 1))
        fi
    done
done <<<"$MATRIX"
[[ $bad -eq 0 ]] || fail "$bad of $n calls did not get the expected answer"
ok "$n calls: every route x every caller as expected"

secrets_grep "$STATE" "$SRV_LOG"
e2e_server_stop
