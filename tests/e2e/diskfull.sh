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

# ------------------------------------------------------------ restore
# The other way round: restoring ~30 MB onto a 16 MB tmpfs stops at the
# first file that does not fit (a few lines, not one per file left),
# says the target is full, leaves only whole files under their names;
# with more room the same command finishes, keeping what is in place.
say "restoring ~30 MB onto a 16 MB tmpfs"
R=$T/rmnt
mkdir -p "$R"
mount -t tmpfs -o size=16m,mode=0755 tmpfs "$R" 2>"$T/mount2.err" \
    || fail "cannot mount a 16 MB tmpfs at $R: $(cat "$T/mount2.err")"
E2E_MOUNTS+=("$R")
mkdir -p "$T/big"
for i in 1 2 3 4 5 6; do random_file "$T/big/part$i" 5; done
echo "small" > "$T/big/note.txt"
must bigbk cz backup "$T/big"
run rfull cz restore "latest:$T/big" --target "$R/out"
expect_rc rfull 1 "restore onto a full disk"
mentions rfull "no space left in $R/out" "that the target is full"
mentions rfull "No space left on device" "the reason of the file that did not fit"
[[ $(grep -c 'cannot restore' "$T/rfull.err") -le 4 ]] \
    || { show rfull; fail "the restore went on file after file on a full disk"; }
for f in "$R/out"/*; do
    [[ -e $f ]] || continue
    cmp -s "$f" "$T/big/$(basename "$f")" || fail "$f is in place but not whole"
done
IN_PLACE=$(find "$R/out" -maxdepth 1 -type f ! -name '.cairn-tmp.*' | wc -l)
ok "restore stopped on the full disk with $IN_PLACE whole files in place"
mount -o remount,size=64m "$R" || fail "cannot grow the tmpfs"
must rmore cz --json restore "latest:$T/big" --target "$R/out"
json_lines rmore
treecmp "$T/big" "$R/out"
[[ $(summary_field rmore skipped_files) -eq $IN_PLACE ]] \
    || { show rmore; fail "the second restore did not keep the $IN_PLACE files in place"; }
ok "with more room the same restore finished, keeping the $IN_PLACE files in place"
