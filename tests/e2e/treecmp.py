#!/usr/bin/env python3
"""treecmp - compare a restored tree with the original, strictly.

Usage: treecmp.py [options] EXPECTED ACTUAL

Compares every entry below EXPECTED and ACTUAL (the two roots themselves are
not compared unless --root): the set of paths, type, permission bits
(including setuid/setgid/sticky), size, content (sha256), symlink target,
mtime in nanoseconds (also of directories and symlinks), user.* extended
attributes, the hard-link structure (which paths share an inode), and owner
(uid/gid) when run as root.  Exit 0 when equal, 1 with a list of differences.

Options:
  --skip REL          leave REL (and everything below it) out on both sides
  --sparse REL:MAX    ACTUAL/REL must have at most MAX bytes allocated
                      (suffix K/M/G allowed)
  --no-dir-mtime      do not compare directory mtimes
  --no-owner          do not compare owners even as root
  --no-xattr          do not compare extended attributes
  --root              also compare the roots' mode, mtime and owner
"""

import argparse
import hashlib
import os
import stat
import sys


def parse_size(s):
    mult = 1
    if s[-1:].upper() in ("K", "M", "G"):
        mult = 1024 ** (" KMG".index(s[-1].upper()))
        s = s[:-1]
    return int(s) * mult


def kind(mode):
    for test, name in ((stat.S_ISREG, "file"), (stat.S_ISDIR, "dir"),
                       (stat.S_ISLNK, "symlink"), (stat.S_ISFIFO, "fifo"),
                       (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "chardev"),
                       (stat.S_ISBLK, "blockdev")):
        if test(mode):
            return name
    return "unknown"


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def user_xattrs(path):
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    out = {}
    for n in names:
        if n.startswith("user."):
            try:
                out[n] = os.getxattr(path, n, follow_symlinks=False)
            except OSError as e:
                out[n] = "<unreadable: %s>" % e
    return out


def walk(root, skip):
    """Map of relative path (bytes) -> lstat result for everything below root."""
    out = {}
    broot = os.fsencode(root)
    stack = [b""]
    while stack:
        rel = stack.pop()
        full = os.path.join(broot, rel) if rel else broot
        for name in os.listdir(full):
            r = os.path.join(rel, name) if rel else name
            if any(r == s or r.startswith(s + b"/") for s in skip):
                continue
            st = os.lstat(os.path.join(broot, r))
            out[r] = st
            if stat.S_ISDIR(st.st_mode):
                stack.append(r)
    return out


def show(rel):
    return os.fsdecode(rel).encode("unicode_escape", "backslashreplace").decode()


def main():
    ap = argparse.ArgumentParser(description="compare two directory trees")
    ap.add_argument("expected")
    ap.add_argument("actual")
    ap.add_argument("--skip", action="append", default=[])
    ap.add_argument("--sparse", action="append", default=[])
    ap.add_argument("--no-dir-mtime", action="store_true")
    ap.add_argument("--no-owner", action="store_true")
    ap.add_argument("--no-xattr", action="store_true")
    ap.add_argument("--root", action="store_true")
    a = ap.parse_args()

    skip = [os.fsencode(s.strip("/")) for s in a.skip]
    owner = os.geteuid() == 0 and not a.no_owner
    exp = walk(a.expected, skip)
    act = walk(a.actual, skip)
    problems = []

    def bad(rel, what):
        problems.append("%s: %s" % (show(rel) if rel else "<root>", what))

    for rel in sorted(set(exp) - set(act)):
        bad(rel, "missing in the restored tree (%s)" % kind(exp[rel].st_mode))
    for rel in sorted(set(act) - set(exp)):
        bad(rel, "unexpected in the restored tree (%s)" % kind(act[rel].st_mode))

    pairs = [(rel, exp[rel], act[rel]) for rel in sorted(set(exp) & set(act))]
    if a.root:
        pairs.insert(0, (b"", os.lstat(a.expected), os.lstat(a.actual)))
    bexp, bact = os.fsencode(a.expected), os.fsencode(a.actual)
    nfiles = nbytes = 0
    for rel, e, r in pairs:
        pe = os.path.join(bexp, rel) if rel else bexp
        pa = os.path.join(bact, rel) if rel else bact
        ke, ka = kind(e.st_mode), kind(r.st_mode)
        if ke != ka:
            bad(rel, "type %s, expected %s" % (ka, ke))
            continue
        if stat.S_IMODE(e.st_mode) != stat.S_IMODE(r.st_mode) and ke != "symlink":
            bad(rel, "mode %04o, expected %04o" % (stat.S_IMODE(r.st_mode),
                                                 stat.S_IMODE(e.st_mode)))
        if owner and (e.st_uid, e.st_gid) != (r.st_uid, r.st_gid):
            bad(rel, "owner %d:%d, expected %d:%d" % (r.st_uid, r.st_gid,
                                                      e.st_uid, e.st_gid))
        if not (ke == "dir" and a.no_dir_mtime) and e.st_mtime_ns != r.st_mtime_ns:
            bad(rel, "mtime %d ns, expected %d ns" % (r.st_mtime_ns, e.st_mtime_ns))
        if ke == "file":
            nfiles += 1
            nbytes += e.st_size
            if e.st_size != r.st_size:
                bad(rel, "size %d, expected %d" % (r.st_size, e.st_size))
            elif sha256(pe) != sha256(pa):
                bad(rel, "content differs (sha256)")
        elif ke == "symlink":
            if os.readlink(pe) != os.readlink(pa):
                bad(rel, "symlink target %r, expected %r" % (os.readlink(pa),
                                                             os.readlink(pe)))
        if not a.no_xattr and ke != "symlink":
            xe, xa = user_xattrs(pe), user_xattrs(pa)
            if xe != xa:
                bad(rel, "user xattrs %r, expected %r" % (xa, xe))

    # hard links: the partition of regular files by inode must be the same
    def groups(m):
        by = {}
        for rel, st in m.items():
            if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
                by.setdefault((st.st_dev, st.st_ino), set()).add(rel)
        return {rel: frozenset(g) for g in by.values() for rel in g}

    ge, ga = groups(exp), groups(act)
    for rel in sorted(set(ge) | set(ga)):
        if rel in exp and rel in act and ge.get(rel, frozenset([rel])) != ga.get(rel, frozenset([rel])):
            want = sorted(show(x) for x in ge.get(rel, [rel]))
            got = sorted(show(x) for x in ga.get(rel, [rel]))
            bad(rel, "hard links %s, expected %s" % (got, want))

    for spec in a.sparse:
        rel, _, mx = spec.rpartition(":")
        p = os.path.join(a.actual, rel)
        st = os.lstat(p)
        alloc = st.st_blocks * 512
        if alloc > parse_size(mx):
            bad(os.fsencode(rel), "not sparse: %d bytes allocated for %d bytes (limit %s)"
                % (alloc, st.st_size, mx))
        else:
            print("treecmp: %s: %d bytes allocated for a %d-byte file (limit %s)"
                  % (rel, alloc, st.st_size, mx))

    if problems:
        print("treecmp: %d difference(s) between %s (expected) and %s (restored):"
              % (len(problems), a.expected, a.actual), file=sys.stderr)
        for p in problems[:60]:
            print("  " + p, file=sys.stderr)
        if len(problems) > 60:
            print("  ... and %d more" % (len(problems) - 60), file=sys.stderr)
        return 1
    print("treecmp: equal: %d entries, %d regular files, %d bytes (content, type, mode, "
          "mtime, size, links, xattrs%s)" % (len(exp), nfiles, nbytes,
                                            ", owner" if owner else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
