#!/usr/bin/env bash
# diskfull: the archive lives on a 40 MB tmpfs; backing up ~100 MB of
# incompressible data fails with a clear "no space" message and a non-zero
# exit, and leaves a consistent archive (check passes).  With the extra data
# removed, a new backup succeeds and check --read-data passes; the restore
# compares equal.  Needs root (mount); fails, never skips, without it.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

is_root || fail "diskfull needs root to mount a tmpfs (run the e2e suite as root)"
M=$T/mnt
mkdir -p "$M"
mount -t tmpfs -o size=40m,mode=0755 tmpfs "$M" 2>"$T/mount.err" \
    || fail "cannot mount a 40 MB tmpfs at $M: $(cat "$T/mount.err") (this test needs mount permission)"
E2E_MOUNTS+=("$M")
REPO=$M/repo
say "archive on a 40 MB tmpfs: $REPO"

D=$T/data
mkdir -p "$D/keep" "$D/extra"
random_file "$D/keep/small1" 3
random_file "$D/keep/small2" 3
echo "text" > "$D/keep/note.txt"
for i in $(seq -w 1 10); do random_file "$D/extra/big$i" 10; done

must init cz init
run full cz backup "$D"
say "backup of ~106 MB into 40 MB exited $RC; free on tmpfs: $(df -k --output=avail "$M" | tail -n 1) KiB"
[[ $RC -ne 0 && $RC -ne 3 ]] || { show full; fail "backup onto a full disk exited $RC (expected a failure, 1)"; }
mentions full 'no space|space left|disk full|ENOSPC' "that the disk is full"
[[ $(wc -l < "$T/full.err") -le 20 ]] || { show full; fail "the disk-full error is not one clear message (stderr has $(wc -l < "$T/full.err") lines)"; }
ok "backup failed with a clear no-space message (exit $RC): $(grep -i -m1 -E 'space|ENOSPC' "$T/full.err" "$T/full.out" | head -n 1)"

run check1 cz check
expect_rc check1 0 "check after the failed backup"
run snaps cz --json snapshots
expect_rc snaps 0 "snapshots after the failed backup"
json_lines snaps
[[ $(jq_py snaps "len(by('snapshot'))") -eq 0 ]] || fail "the failed backup left a snapshot"
ok "no snapshot was written by the failed backup"

say "removing the extra data and backing up again"
rm -rf "$D/extra"
run again cz backup "$D"
say "free on tmpfs after it: $(df -k --output=avail "$M" | tail -n 1) KiB"
expect_rc again 0 "backup of the remaining ~6 MB after the disk-full failure"
must checkdata cz check --read-data
must restore cz restore "latest:$D" --target "$T/r"
treecmp "$D" "$T/r"
