#!/usr/bin/env bash
# backup_restore: a realistic tree (gen-dataset small) plus hard cases (sparse
# file, hard links, fifo, xattrs, odd modes, setuid, owners, old and
# nanosecond mtimes, odd names) goes through init, backup, snapshots, ls,
# restore (whole and a subfolder and one file), a no-change backup that
# reads nothing, and diff after gen-dataset --mutate.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

command -v setfattr >/dev/null || fail "setfattr is needed (Debian package attr)"
GEN=$(shared_dir)/bench/gen-dataset
SRC=$T/src
D=$SRC/data
mkdir -p "$SRC"
say "generating the small dataset into $D"
"$GEN" --profile small "$D" > "$T/gen.log" 2>&1 || { cat "$T/gen.log"; fail "gen-dataset failed"; }
tail -n 1 "$T/gen.log"

# ---------------------------------------------------------------- extra cases
X=$D/extra
say "adding the hard cases in $X"
mkdir -p "$X/links/a" "$X/links/b" "$X/empty" "$X/modes" "$X/times" "$X/names" "$X/xattr"
# sparse: 64 MiB apparent, a few KiB of data in the middle
truncate -s 64M "$X/sparse.img"
printf 'in the middle of nowhere %.0s' {1..200} \
    | dd of="$X/sparse.img" bs=4096 seek=$((8192)) conv=notrunc status=none
sparse_alloc=$(( $(stat -c %b "$X/sparse.img") * 512 ))
say "sparse.img: 64 MiB apparent, $sparse_alloc bytes allocated in the source"
# hard links: three names in two directories, and a pair
random_file "$X/links/a/one" 1
ln "$X/links/a/one" "$X/links/a/two"
ln "$X/links/a/one" "$X/links/b/three"
echo "pair" > "$X/links/b/p1"
ln "$X/links/b/p1" "$X/links/p2"
# fifo
mkfifo "$X/fifo"
# xattrs (user.*) on a file and a directory
echo "tagged" > "$X/xattr/file"
setfattr -n user.color -v blue "$X/xattr/file"
setfattr -n user.empty "$X/xattr/file"
setfattr -n user.bin -v 0x00ff10 "$X/xattr/file"
setfattr -n user.dir -v yes "$X/xattr"
# odd modes
echo "x" > "$X/modes/m0751"; chmod 0751 "$X/modes/m0751"
echo "x" > "$X/modes/m0400"; chmod 0400 "$X/modes/m0400"
echo "x" > "$X/modes/m2755"; chmod 2755 "$X/modes/m2755"
mkdir "$X/modes/d0700" "$X/modes/d1777" "$X/modes/d0555"
echo inside > "$X/modes/d0555/f"
chmod 0700 "$X/modes/d0700"; chmod 1777 "$X/modes/d1777"; chmod 0555 "$X/modes/d0555"
if is_root; then
    echo "x" > "$X/modes/m4755"; chmod 4755 "$X/modes/m4755"
    echo "x" > "$X/modes/m0000"; chmod 0000 "$X/modes/m0000"
    echo "owned" > "$X/modes/owned"; chown 1234:5678 "$X/modes/owned"
    mkdir "$X/modes/downed"; chown 4321:8765 "$X/modes/downed"
    ln -s owned "$X/modes/lowned"; chown -h 1234:5678 "$X/modes/lowned"
else
    say "not root: setuid file and foreign owners left out"
fi
# times
echo "old" > "$X/times/epoch"; touch -m -d @1 "$X/times/epoch"
echo "before" > "$X/times/pre1970"; touch -m -d @-86400 "$X/times/pre1970"
echo "ns" > "$X/times/nanos"; touch -m -d '2021-03-04 05:06:07.123456789' "$X/times/nanos"
ln -s nanos "$X/times/link"; touch -h -m -d '2019-01-02 03:04:05.987654321' "$X/times/link"
touch -m -d '2000-01-01 00:00:00.5' "$X/times"
# names
echo s > "$X/names/with space"
echo u > "$X/names/ünïcødé ✓"
echo d > "$X/names/-dash"
echo b > "$X/names/back\\slash"
echo n > "$X/names/$(printf 'latin1-\xe9\xff')"
echo q > "$X/names/quote\"and'apos"
: > "$X/names/empty-file"
ln -s "/nonexistent/dangling target" "$X/names/dangling"
# the directory that holds the links: set last so its own mtime is fixed
touch -m -d '2010-10-10 10:10:10.101010101' "$X/links/a" "$X/empty"

# ---------------------------------------------------------------- init, backup
must init cz init
ok "archive created at $REPO"
must backup1 cz --json backup "$D"
json_lines backup1
[[ $(summary_field backup1 complete) == 1 ]] || fail "first backup: summary says complete is not true"
nfiles_src=$(find "$D" -type f | wc -l)
files1=$(summary_field backup1 files)
say "first backup: files=$files1 (source has $nfiles_src regular files)"
[[ $files1 -ge $nfiles_src ]] || fail "backup summary files=$files1 < $nfiles_src regular files in the source"

mapfile -t ids < <(snapshot_ids)
[[ ${#ids[@]} -eq 1 && -n ${ids[0]} ]] || fail "snapshots --json: expected 1 snapshot with an id, got ${#ids[@]}"
S1=${ids[0]}
ok "snapshots --json lists one snapshot: $S1"
run snaps cz snapshots
expect_rc snaps 0 "snapshots"
mentions_fixed snaps "${S1:0:8}" "the snapshot id (prefix)"

# ---------------------------------------------------------------- ls
must ls1 cz ls latest "$X"
for n in links empty modes times names xattr sparse.img fifo; do
    grep -q -F -- "$n" "$T/ls1.out" || { show ls1; fail "ls latest $X does not list $n"; }
done
ok "ls lists the entries of $X"
must ls2 cz ls "${S1:0:8}" "$X/names" -l
grep -q -F -- "with space" "$T/ls2.out" || { show ls2; fail "ls -l with a snapshot prefix misses 'with space'"; }
ok "ls -l by snapshot prefix"
must ls3 cz --json ls latest "$X" --recursive
json_lines ls3
# every entry below $X (the folder itself may be listed too), none lost;
# a name that is not UTF-8 must still get an entry (escaped somehow)
nls=$(jq_py ls3 "len([m for m in by('entry') if m.get('path') != '$X'])")
nfind=$(find "$X" -mindepth 1 | wc -l)
[[ $nls -eq $nfind ]] || { show ls3; fail "ls --json -R $X: $nls entries below it, find says $nfind (one lost?)"; }
jq_py ls3 "sorted(m.get('path') for m in by('entry') if m.get('path') != '$X')" > "$T/ls3.paths"
find "$X" -mindepth 1 | LC_ALL=C sort | grep -a -v -F 'latin1-' > "$T/find.paths"
grep -v -F 'latin1-' "$T/ls3.paths" | LC_ALL=C sort | diff - "$T/find.paths" \
    || fail "ls --json -R $X: the paths differ from find's (- ls, + find)"
ok "ls --json --recursive: $nls entries below $X, the same paths as find"

# ---------------------------------------------------------------- restore
say "restoring latest:$D"
mkdir -p "$T/r1"
must restore1 cz restore "latest:$D" --target "$T/r1"
treecmp "$D" "$T/r1" --sparse "extra/sparse.img:8M"

say "restoring the subfolder latest:$X/links"
must restore2 cz restore "latest:$X/links" --target "$T/r2"
treecmp "$X/links" "$T/r2"

say "restoring one file latest:$X/times/nanos"
must restore3 cz restore "latest:$X/times/nanos" --target "$T/r3"
[[ -f $T/r3/nanos ]] || { ls -laR "$T/r3"; fail "restore of one file: $T/r3/nanos missing"; }
cmp "$X/times/nanos" "$T/r3/nanos" || fail "restore of one file: content differs"
[[ $(stat -c %Y.%y "$X/times/nanos") == $(stat -c %Y.%y "$T/r3/nanos") ]] \
    || fail "restore of one file: mtime differs"
ok "one file restored with its content and mtime"

# New files take the group of a set-group-ID directory they are made in:
# the restore must still give each file its own group (and mode).
if is_root; then
    say "restoring latest:$X/modes into a set-group-ID folder of group 5678"
    mkdir "$T/r5"; chgrp 5678 "$T/r5"; chmod 2775 "$T/r5"
    must restore5 cz restore "latest:$X/modes" --target "$T/r5"
    treecmp "$X/modes" "$T/r5"
fi

# An unprivileged restore (files are named through /proc, not by
# linkat's AT_EMPTY_PATH, which needs a capability), with a umask that
# takes bits from the files' modes.
say "restoring latest:$X as an unprivileged user with umask 077"
if is_root; then
    U=65534
    mkdir "$T/r6" "$T/r6cache"; chown "$U:$U" "$T/r6" "$T/r6cache"
    # Readable by nobody: the archive (the password file is already).
    chmod -R o+rX "$REPO"
    as_user() { setpriv --reuid="$U" --regid="$U" --clear-groups -- "$@"; }
    cmp_owner=(--no-owner)
else
    mkdir "$T/r6" "$T/r6cache"
    as_user() { "$@"; }
    cmp_owner=()
fi
must restore6 as_user env XDG_CACHE_HOME="$T/r6cache" bash -c 'umask 077; exec "$@"' - \
    "$CAIRN" -r "$REPO" restore "latest:$X" --target "$T/r6"
treecmp "$X" "$T/r6" "${cmp_owner[@]}" --sparse "sparse.img:8M"
rm -rf "$T/r1" "$T/r2" "$T/r3" "$T/r5" "$T/r6" "$T/r6cache"

# ---------------------------------------------------------------- no change
say "backing up again, nothing changed"
must backup2 cz --json backup "$D"
json_lines backup2
br=$(summary_field backup2 bytes_read)
fu=$(summary_field backup2 files_unchanged)
f2=$(summary_field backup2 files)
[[ $br -eq 0 ]] || fail "no-change backup read $br bytes (expected 0)"
[[ $fu -eq $f2 ]] || fail "no-change backup: files_unchanged=$fu but files=$f2"
ok "no-change backup read 0 bytes, files_unchanged == files == $f2"

# ---------------------------------------------------------------- mutate, diff
say "mutating the source (gen-dataset --mutate --seed 1)"
( cd "$D" && find . -type f -print0 | xargs -0 sha256sum -- 2>/dev/null ) | sort -k2 > "$T/before.sha" || true
"$GEN" --mutate --seed 1 "$D" > "$T/mutate.log" 2>&1 || { cat "$T/mutate.log"; fail "mutate failed"; }
tail -n 1 "$T/mutate.log"
( cd "$D" && find . -type f -print0 | xargs -0 sha256sum -- 2>/dev/null ) | sort -k2 > "$T/after.sha" || true
must backup3 cz --json backup "$D"
json_lines backup3
mapfile -t ids < <(snapshot_ids)
[[ ${#ids[@]} -eq 3 ]] || fail "expected 3 snapshots, got ${#ids[@]}"
S2=${ids[1]} S3=${ids[2]}
must diff1 cz diff "$S2" "$S3"
python3 - "$T/before.sha" "$T/after.sha" "$T/diff1.out" "$D" <<'EOF' || { show diff1; fail "diff output does not match the changes"; }
import sys
def load(p):
    m = {}
    for line in open(p, encoding="utf-8", errors="surrogateescape"):
        h, _, path = line.rstrip("\n").partition("  ")
        m[path[2:] if path.startswith("./") else path] = h
    return m
before, after, root = load(sys.argv[1]), load(sys.argv[2]), sys.argv[4].rstrip("/")
added = set(after) - set(before)
removed = set(before) - set(after)
modified = {p for p in set(before) & set(after) if before[p] != after[p]}
lines = {"+": set(), "-": set(), "M": set(), "U": set(), "T": set()}
for line in open(sys.argv[3], encoding="utf-8", errors="surrogateescape"):
    line = line.rstrip("\n")
    if not line.strip():
        continue
    flag, rest = line[0], line[1:].strip()
    if flag in lines:
        p = rest[len(root) + 1:] if rest.startswith(root + "/") else rest
        lines[flag].add(p.rstrip("/"))
print("diff: %d +, %d -, %d M, %d U, %d T lines; expected >= %d added, %d removed, %d modified files"
      % (len(lines["+"]), len(lines["-"]), len(lines["M"]), len(lines["U"]), len(lines["T"]),
         len(added), len(removed), len(modified)))
def covered(p, s):
    parts = p.split("/")
    return any("/".join(parts[:i]) in s for i in range(1, len(parts) + 1))
bad = []
bad += ["missing M %s" % p for p in sorted(modified) if p not in lines["M"]]
bad += ["missing + %s" % p for p in sorted(added) if not covered(p, lines["+"])]
bad += ["missing - %s" % p for p in sorted(removed) if not covered(p, lines["-"])]
same = {p for p in set(before) & set(after) if before[p] == after[p]}
bad += ["M for unchanged content %s" % p for p in sorted(lines["M"] & same)]
if not (added and removed and modified):
    bad.append("the mutation did not add, remove and modify files (test setup)")
for b in bad[:30]:
    print("  " + b, file=sys.stderr)
sys.exit(1 if bad else 0)
EOF
ok "diff names every added (+), removed (-) and modified (M) file"

say "restoring the mutated snapshot and comparing"
must restore4 cz restore "latest:$D" --target "$T/r4"
treecmp "$D" "$T/r4" --sparse "extra/sparse.img:8M"
