#!/usr/bin/env bash
# damage: what the tool does with a damaged archive (each case on its own
# copy of the same archive):
#  (a) one byte flipped in the middle of a pack: check --read-data exits 4
#      and names the pack and an affected file; restore exits 4, names the
#      damaged file(s) and restores every other file exactly;
#  (b) a pack truncated: check exits 4 and names it;
#  (c) an index object deleted: check and restore fail cleanly (or repair),
#      never crash;
#  (d) a snapshot object corrupted: snapshots reports it and still lists the
#      other snapshots.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

flip_byte() {  # flip_byte FILE OFFSET
    python3 - "$1" "$2" <<'EOF'
import os, sys
p, off = sys.argv[1], int(sys.argv[2])
os.chmod(p, 0o644)
with open(p, "r+b") as f:
    f.seek(off)
    b = f.read(1)
    f.seek(off)
    f.write(bytes([b[0] ^ 0x5a]))
EOF
}

D=$T/data
mkdir -p "$D/bin" "$D/text"
for i in $(seq -w 1 24); do random_file "$D/bin/r$i" 1; done
for i in $(seq -w 1 20); do seq 1 $((10#$i * 3000)) > "$D/text/t$i.txt"; done
ln -s ../text/t01.txt "$D/bin/link"

GOOD=$T/good
must init "$CAIRN" -r "$GOOD" init --pack-size 4M
must backup1 "$CAIRN" -r "$GOOD" backup "$D"
echo one > "$D/text/added1"
must backup2 "$CAIRN" -r "$GOOD" backup "$D"
echo two > "$D/text/added2"
must backup3 "$CAIRN" -r "$GOOD" backup "$D"
REPO=$GOOD
mapfile -t ids < <(snapshot_ids)
[[ ${#ids[@]} -eq 3 ]] || fail "expected 3 snapshots, got ${#ids[@]}"
must check_good "$CAIRN" -r "$GOOD" check --read-data
mapfile -t packs < <(cd "$GOOD" && find data -type f ! -name '.*' -printf '%s %p\n' | sort -rn | awk '{print $2}')
say "archive: ${#packs[@]} packs, ${#ids[@]} snapshots, $(du -sh "$GOOD" | cut -f1)"
[[ ${#packs[@]} -ge 2 ]] || fail "expected at least 2 packs with --pack-size 4M (got ${#packs[@]})"

fresh() {  # fresh NAME: REPO = a private copy of the good archive
    REPO=$T/$1
    rm -rf "$REPO"
    cp -a "$GOOD" "$REPO"
}

# ---------------------------------------------------------------- (a) flipped byte
say "(a) flipping one byte in the middle of the largest pack"
fresh flip
P=${packs[0]}
PN=$(basename "$P")
flip_byte "$REPO/$P" $(( $(stat -c %s "$REPO/$P") / 2 ))
run a_check cz check
say "(a) check without --read-data exited $RC (0 or 4 are both acceptable)"
[[ $RC -eq 0 || $RC -eq 4 ]] || { show a_check; fail "(a) check exited $RC"; }
run a_checkdata cz check --read-data
expect_rc a_checkdata 4 "(a) check --read-data on a damaged pack"
mentions_fixed a_checkdata "${PN:0:12}" "the damaged pack"
named=0
while IFS= read -r f; do
    if grep -q -F -- "$f" "$T/a_checkdata.out" "$T/a_checkdata.err"; then named=$((named + 1)); fi
done < <(find "$D" -type f)
[[ $named -ge 1 ]] || { show a_checkdata; fail "(a) check --read-data names no affected file path"; }
ok "(a) check --read-data names the pack and $named affected file(s)"

run a_restore cz restore "latest:$D" --target "$T/ra"
expect_rc a_restore 4 "(a) restore with a damaged pack"
skips=()
while IFS= read -r f; do
    if grep -q -F -- "$f" "$T/a_restore.out" "$T/a_restore.err"; then skips+=(--skip "${f#"$D"/}"); fi
done < <(find "$D" -type f)
[[ ${#skips[@]} -ge 2 ]] || { show a_restore; fail "(a) restore does not name any damaged file"; }
say "(a) restore named $(( ${#skips[@]} / 2 )) damaged file(s): ${skips[*]}"
(( ${#skips[@]} / 2 <= 4 )) || fail "(a) one flipped byte damaged more than 4 files?"
treecmp "$D" "$T/ra" "${skips[@]}"
ok "(a) every other file restored exactly"

# ---------------------------------------------------------------- (b) truncated pack
say "(b) truncating a pack to half its size"
fresh trunc
P=${packs[1]}
PN=$(basename "$P")
truncate -s $(( $(stat -c %s "$REPO/$P") / 2 )) "$REPO/$P"
run b_check cz check
expect_rc b_check 4 "(b) check with a truncated pack"
mentions_fixed b_check "${PN:0:12}" "the truncated pack"
run b_checkdata cz check --read-data
expect_rc b_checkdata 4 "(b) check --read-data with a truncated pack"

# ---------------------------------------------------------------- (c) index object deleted
say "(c) deleting an index object"
fresh noindex
mapfile -t idx < <(cd "$REPO" && find index -type f ! -name '.*' | sort)
[[ ${#idx[@]} -ge 1 ]] || fail "(c) no index objects found under index/"
rm -f "$REPO/${idx[0]}"
say "(c) removed ${idx[0]} (of ${#idx[@]} index objects)"
run c_check cz check
[[ $RC -ne 0 ]] || { show c_check; fail "(c) check passed with an index object missing"; }
[[ -s $T/c_check.out || -s $T/c_check.err ]] || fail "(c) check failed without saying why"
ok "(c) check reports the missing index (exit $RC)"
run c_restore cz restore "latest:$D" --target "$T/rc"
case $RC in
    0) treecmp "$D" "$T/rc"; ok "(c) restore recovered without the index object" ;;
    1|4) [[ -s $T/c_restore.err || -s $T/c_restore.out ]] || fail "(c) restore failed without a message"
         ok "(c) restore fails cleanly (exit $RC): $(head -n 1 "$T/c_restore.err")" ;;
    *) show c_restore; fail "(c) restore exited $RC" ;;
esac

# ---------------------------------------------------------------- (d) snapshot corrupted
say "(d) corrupting the middle snapshot object"
fresh badsnap
S=${ids[1]}
[[ -f $REPO/snapshots/$S ]] || { ls "$REPO/snapshots"; fail "(d) no snapshot object named $S"; }
flip_byte "$REPO/snapshots/$S" $(( $(stat -c %s "$REPO/snapshots/$S") / 2 ))
run d_snaps cz snapshots
say "(d) snapshots exited $RC"
[[ $RC -eq 0 || $RC -eq 4 ]] || { show d_snaps; fail "(d) snapshots exited $RC"; }
mentions_fixed d_snaps "${ids[0]:0:8}" "the first snapshot"
mentions_fixed d_snaps "${ids[2]:0:8}" "the third snapshot"
mentions d_snaps "${S:0:8}.*(damag|corrupt|invalid|fail|error)|(damag|corrupt|invalid|fail|error).*${S:0:8}" \
    "the damaged snapshot"
run d_snaps_json cz --json snapshots
[[ $RC -eq 0 || $RC -eq 4 ]] || { show d_snaps_json; fail "(d) snapshots --json exited $RC"; }
json_lines d_snaps_json
n=$(jq_py d_snaps_json "len(by('snapshot'))")
[[ $n -eq 2 ]] || { show d_snaps_json; fail "(d) snapshots --json lists $n snapshots, expected 2"; }
ok "(d) snapshots --json lists the 2 intact snapshots"
must d_restore cz restore "latest:$D" --target "$T/rd"
treecmp "$D" "$T/rd"
run d_check cz check
expect_rc d_check 4 "(d) check with a corrupted snapshot"
