#!/usr/bin/env bash
# killed: a backup of ~300 MB is killed with SIGKILL while it writes packs;
# afterwards check passes, a new backup succeeds, check --read-data passes
# and the restore compares equal.  (An interrupted backup may leave only
# unreferenced packs and a stale lock, which the next commands must cope
# with.)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

D=$T/data
mkdir -p "$D/a" "$D/b"
say "making 300 MB of random data"
for i in $(seq -w 1 15); do random_file "$D/a/r$i" 10; done
for i in $(seq -w 1 15); do random_file "$D/b/r$i" 10; done
for i in $(seq 1 200); do echo "small file $i" > "$D/b/s$i.txt"; done

must init cz init
say "starting the backup in the background"
"$CAIRN" -r "$REPO" backup "$D" > "$T/bg.out" 2> "$T/bg.err" &
BG=$!
E2E_PIDS+=("$BG")
# kill it once it has written ~48 MB into the archive (packs or their
# temporary files), or after at most 1 s: well before the end of 300 MB
for _ in $(seq 1 20); do
    written=$(du -sm "$REPO/data" 2>/dev/null | cut -f1)
    (( ${written:-0} >= 48 )) && break
    kill -0 "$BG" 2>/dev/null || break
    sleep 0.05
done
if ! kill -0 "$BG" 2>/dev/null; then
    wait "$BG" || true
    cat "$T/bg.err" >&2
    fail "the backup finished before it could be killed (too fast for 300 MB?): test inconclusive"
fi
kill -9 "$BG"
wait "$BG" 2>/dev/null || true
E2E_PIDS=()
npacks=$(find "$REPO/data" -type f ! -name '.*' | wc -l)
ntmp=$(find "$REPO" -name '.tmp-*' | wc -l)
say "killed with SIGKILL: $npacks packs and $ntmp temporary files left, $(du -sm "$REPO" | cut -f1) MB"
(( npacks + ntmp >= 1 )) || fail "no pack or temporary file was written before the kill: the kill did not hit a writing backup"

run snaps cz --json snapshots
expect_rc snaps 0 "snapshots after the kill"
json_lines snaps
[[ $(jq_py snaps "len(by('snapshot'))") -eq 0 ]] || fail "the killed backup left a snapshot"
run check1 cz check
expect_rc check1 0 "check after the kill (stale lock and unreferenced packs must not fail it)"

run again cz --json backup "$D"
expect_rc again 0 "a new backup after the kill"
say "new backup: bytes_read=$(summary_field again bytes_read) added_bytes=$(summary_field again added_bytes)"
say "after the new backup: $(find "$REPO" -name '.tmp-*' | wc -l) temporary files left, $(du -sm "$REPO" | cut -f1) MB"
must checkdata cz check --read-data
must restore cz restore "latest:$D" --target "$T/r"
treecmp "$D" "$T/r"
