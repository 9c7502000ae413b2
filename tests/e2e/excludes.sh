#!/usr/bin/env bash
# excludes: every kind of --exclude pattern (component glob, `?`, `[...]`,
# anchored absolute path with `*`, `**`, directory-only `/` suffix),
# --exclude-file (with comments and blank lines), --exclude-caches (a proper
# CACHEDIR.TAG vs a fake one) and --one-file-system (a tmpfs mounted inside,
# when mounting is permitted).  The restored tree must hold exactly the
# expected paths.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

D=$T/data
mk() { mkdir -p "$(dirname "$D/$1")"; echo "$1" > "$D/$1"; }
for f in keep.txt a.tmp sub/b.tmp sub/keep2.txt \
         node_modules/x.js deep/er/node_modules/y.js deep/er/keep.js \
         file1.dat file10.dat filex.dat \
         img0.raw img2.raw img5.raw \
         home/ana/.cache/f home/bob/.cache/g home/ana/sub/.cache/kept home/ana/notes \
         proj/build/o1 proj/a/b/build/o2 proj/a/b/src/c.c proj/buildx/o3 \
         logs/app.log other/logs \
         x.bak doc.keep notes/y.bak notes/z.txt \
         cache1/junk cache1/more/junk2 fakecache/kept; do
    mk "$f"
done
printf 'Signature: 8a477f597d28d172789f06886806bc55\n# This file is a cache directory tag.\n' > "$D/cache1/CACHEDIR.TAG"
printf 'Signature: not the right one\n' > "$D/fakecache/CACHEDIR.TAG"

cat > "$T/excludes.txt" <<'EOF'
# backup files

*.bak
   
# doc.keep stays: this line is a comment
#doc.keep
EOF

excl=(--exclude '*.tmp' --exclude node_modules --exclude 'file?.dat' --exclude 'img[0-2].raw'
      --exclude "$D/home/*/.cache" --exclude "$D/proj/**/build" --exclude 'logs/'
      --exclude-file "$T/excludes.txt" --exclude-caches)
expected="cache1
cache1/CACHEDIR.TAG
deep
deep/er
deep/er/keep.js
doc.keep
fakecache
fakecache/CACHEDIR.TAG
fakecache/kept
file10.dat
home
home/ana
home/ana/notes
home/ana/sub
home/ana/sub/.cache
home/ana/sub/.cache/kept
home/bob
img5.raw
keep.txt
notes
notes/z.txt
other
other/logs
proj
proj/a
proj/a/b
proj/a/b/src
proj/a/b/src/c.c
proj/buildx
proj/buildx/o3
sub
sub/keep2.txt"

must init cz init
say "backing up with: ${excl[*]}"
must backup cz backup "${excl[@]}" "$D"
must restore cz restore "latest:$D" --target "$T/r"
( cd "$T/r" && find . -mindepth 1 -printf '%P\n' | sort ) > "$T/got.txt"
if ! diff -u <(printf '%s\n' "$expected") "$T/got.txt"; then
    say "(- expected, + restored); note: '$D/proj/**/build' must also match proj/build (** = zero or more components)"
    fail "the excluded set is wrong"
fi
ok "exactly the expected $(wc -l < "$T/got.txt") entries were backed up"
# the kept files have their content
cmp "$D/cache1/CACHEDIR.TAG" "$T/r/cache1/CACHEDIR.TAG" || fail "CACHEDIR.TAG content differs"
cmp "$D/fakecache/kept" "$T/r/fakecache/kept" || fail "fakecache/kept content differs"
ok "kept files have their content"

# without excludes everything is there (the patterns, not the tool, did it)
must backup_all cz backup "$D"
must restore_all cz restore "latest:$D" --target "$T/r_all"
treecmp "$D" "$T/r_all"

# ---------------------------------------------------------------- one file system
if ! is_root; then
    say "NOTICE: not root, cannot mount a tmpfs: --one-file-system part skipped"
    exit 0
fi
F=$T/fs
mkdir -p "$F/mnt" "$F/dir"
echo outer > "$F/dir/outer"
if ! mount -t tmpfs -o size=8m tmpfs "$F/mnt" 2>"$T/mount.err"; then
    say "NOTICE: mount -t tmpfs not permitted ($(cat "$T/mount.err")): --one-file-system part skipped"
    exit 0
fi
E2E_MOUNTS+=("$F/mnt")
echo inner > "$F/mnt/inner"
mkdir "$F/mnt/sub"; echo deeper > "$F/mnt/sub/deeper"
must backup_xdev cz backup --one-file-system "$F"
must restore_xdev cz restore "latest:$F" --target "$T/r_xdev"
[[ -f $T/r_xdev/dir/outer ]] || fail "--one-file-system lost dir/outer"
[[ ! -e $T/r_xdev/mnt/inner && ! -e $T/r_xdev/mnt/sub ]] \
    || fail "--one-file-system: the contents of the tmpfs mounted at mnt were backed up"
ok "--one-file-system: the tmpfs contents were left out$([[ -d $T/r_xdev/mnt ]] && echo ' (mount point kept as an empty folder)')"
must backup_noxdev cz backup "$F"
must restore_noxdev cz restore "latest:$F" --target "$T/r_noxdev"
[[ -f $T/r_noxdev/mnt/inner && -f $T/r_noxdev/mnt/sub/deeper ]] \
    || fail "without --one-file-system the tmpfs contents are missing"
ok "without --one-file-system the tmpfs contents are backed up"
