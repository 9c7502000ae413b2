#!/usr/bin/env python3
"""summarize.py - the readable table of bench/run from its raw TSV.

Usage: summarize.py [--tools cairn,restic,borg[,cairn-srv,restic-srv]] [--files N]
                    [--bytes N] [--cache warm|cold] BENCH.TSV

For each phase and tool: the median over the repetitions of wall time (s),
CPU time (user+sys, s), peak RSS (MiB) and archive size after the phase
(MB = 1e6 bytes); then, for each other tool, its ratio to Cairn of wall time,
peak RSS and archive size (>1: the other tool takes more time, memory or
space than Cairn).  A cell is FAIL when any repetition of it failed (the
median is then over the repetitions that succeeded).  With several
repetitions a second table shows the range (min-max) of wall times.

The server tools (cairn-srv, restic-srv: bench/run --server) get a table of
their own, compared with cairn-srv, with two more figures per tool: the
server's CPU time (sCPU) and peak RSS (sRSS) during the phase.  Rows of the
older TSV layout (without the server columns) are read as well.
"""

import argparse
import csv
import statistics
import sys

PHASES = ["init", "full", "nochange", "incr", "restore", "verify", "check", "check_data",
          "srv_restore", "srv_verify"]


def fnum(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return None


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, nd=2, width=7):
    if x is None:
        return "-".rjust(width)
    return ("%.*f" % (nd, x)).rjust(width)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tsv")
    ap.add_argument("--tools", default="cairn,restic,borg")
    ap.add_argument("--files", default="?")
    ap.add_argument("--bytes", type=float, default=None)
    ap.add_argument("--cache", default="warm")
    a = ap.parse_args()

    rows = list(csv.DictReader(open(a.tsv, newline=""), delimiter="\t"))
    tools = [t for t in a.tools.split(",") if t]
    cells = {}      # (tool, phase) -> list of rows that succeeded
    failed = set()  # (tool, phase)
    versions, reps, dataset = {}, set(), "?"
    for r in rows:
        key = (r["tool"], r["phase"])
        versions[r["tool"]] = r["version"]
        reps.add(r["rep"])
        dataset = r["dataset"]
        if r["status"] == "ok" or r["status"].startswith("warn"):
            cells.setdefault(key, []).append(r)
        else:
            failed.add(key)
    phases = [p for p in PHASES if any((t, p) in cells or (t, p) in failed for t in tools)]
    phases += sorted({p for (_, p) in list(cells) + list(failed)} - set(phases))

    def stat(tool, phase, col, scale=1.0):
        v = med(fnum(r.get(col)) for r in cells.get((tool, phase), []))
        return None if v is None else v / scale

    size = "" if a.bytes is None else ", %.1f MB" % (a.bytes / 1e6)
    print()
    print("# dataset %s (%s files%s); %s; %d repetition(s), medians; %s cache" % (
        dataset, a.files, size, ", ".join("%s %s" % (t, versions.get(t, "?")) for t in tools),
        len(reps), a.cache))
    print("# wall, CPU (user+sys) in s; RSS = peak resident memory of the tool in MiB;"
          " archive = size after the phase in MB (1e6 bytes)")

    def block(btools, ref, server):
        """One table: btools side by side, then each other tool's ratio to ref."""
        others = [t for t in btools if t != ref] if ref in btools else []
        cols = ["wall", "CPU", "RSS"] + (["sCPU", "sRSS"] if server else []) + ["archive"]
        w_tool = 8 * len(cols) - 1 + (1 if "archive" in cols else 0)
        head1 = "%-10s" % ""
        head2 = "%-10s" % "phase"
        for t in btools:
            head1 += " | " + t.center(w_tool)
            head2 += " | " + " ".join("%8s" % c if c == "archive" else "%7s" % c for c in cols)
        for t in others:
            rt = "%s/%s" % (t, ref)
            head1 += " | " + rt.center(max(20, len(rt)))
            head2 += " | " + ("%6s %6s %6s" % ("wall", "RSS", "size")).rjust(max(20, len(rt)))
        print(head1)
        print(head2)
        print("-" * len(head2))
        for p in phases:
            if not any((t, p) in cells or (t, p) in failed for t in btools):
                continue
            line = "%-10s" % p
            for t in btools:
                if (t, p) in failed and (t, p) not in cells:
                    line += " | " + "FAIL".center(w_tool)
                    continue
                vals = [fmt(stat(t, p, "wall_s")), fmt(stat(t, p, "cpu_s")),
                        fmt(stat(t, p, "max_rss_kib", 1024.0), 1)]
                if server:
                    vals += [fmt(stat(t, p, "server_cpu_s")),
                             fmt(stat(t, p, "server_rss_kib", 1024.0), 1)]
                vals.append(fmt(stat(t, p, "repo_bytes", 1e6), 1, 8))
                cell = " ".join(vals)
                if (t, p) in failed:
                    cell = cell[:-5] + " FAIL"
                line += " | " + cell
            for t in others:
                rs = []
                for col in ("wall_s", "max_rss_kib", "repo_bytes"):
                    o, c = stat(t, p, col), stat(ref, p, col)
                    if p in ("verify", "srv_verify") and col != "repo_bytes":
                        o = None  # the verify phase times the comparison, not the tool
                    rs.append(fmt(o / c if o is not None and c else None, 2, 6))
                line += " | " + " ".join(rs).rjust(max(20, len("%s/%s" % (t, ref))))
            print(line)

    local = [t for t in tools if not t.endswith("-srv")]
    server = [t for t in tools if t.endswith("-srv")]
    if local:
        block(local, "cairn", False)
    if server:
        print()
        print("# server phase: the client here, its server on 127.0.0.1 over HTTPS"
              " (cairn-srv: cairn -> cairnd; restic-srv: restic -> rclone serve restic);")
        print("# wall, CPU, RSS: the client; sCPU, sRSS: the server's CPU s and peak RSS MiB"
              " during the phase; archive = the server's copy in MB")
        block(server, "cairn-srv", True)

    if len(reps) > 1:
        print()
        print("# wall time range over the repetitions (min-max, s)")
        print("%-10s" % "phase" + "".join(" | %15s" % t for t in tools))
        for p in phases:
            line = "%-10s" % p
            for t in tools:
                ws = [fnum(r["wall_s"]) for r in cells.get((t, p), [])]
                ws = [w for w in ws if w is not None]
                line += " | %15s" % ("%.2f-%.2f" % (min(ws), max(ws)) if ws else "-")
            print(line)

    thr = []
    for t in tools:
        for p in ("full", "restore", "srv_restore"):
            v = med(fnum(r["mb_per_s"]) for r in cells.get((t, p), []))
            if v is not None:
                thr.append("%s %s %.1f MB/s" % (t, p, v))
    if thr:
        print("# throughput (tree bytes / wall): " + "; ".join(thr))
    if failed:
        print("# FAILED cells: " + ", ".join("%s/%s" % k for k in sorted(failed)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
