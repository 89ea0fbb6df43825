#!/usr/bin/env python3
"""Run a detector on every file of the NAB subset, write NAB's results layout
and score it with shared/tools/nabscore.py in its three profiles.

Standard library only (any python3). See bench/eval/README.md.

  RESULTS/<name>/<category>/<name>_<file>.csv   columns timestamp,value,anomaly_score

Detectors (--detector):
  preshift  runs, once per file, the template --cmd (default
            '{preshift} score {flags} {input}') and reads its standard output
            (or the file {output} if the template names it). The output must
            have one row per input row, in order: 'timestamp,value,anomaly_score'
            with or without that header line.
  zero      built-in: anomaly_score 0 on every row (never fires: scores 0).
  random    built-in: uniform random scores in [0, 1) (--seed).
  zscore    built-in: online z of the value against the mean/std of all earlier
            rows, anomaly_score = |z| / (|z| + 3), 0 during the warm-up
            (min(15 %, 750) rows). A crude baseline.
"""

import argparse
import concurrent.futures
import csv
import glob
import io
import json
import math
import os
import random
import shlex
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PROFILES = ("standard", "reward_low_FP_rate", "reward_low_FN_rate")
DEFAULT_CMD = "{preshift} score {flags} {input}"


def find_shared():
    for cand in (os.environ.get("PRESHIFT_SHARED"),
                 os.path.join(REPO, "shared"),
                 os.path.join(REPO, "..", "shared"),
                 "/work/shared"):
        if cand and os.path.isfile(os.path.join(cand, "tools", "nabscore.py")):
            return os.path.normpath(cand)
    return None


def read_input(path):
    with open(path, newline="") as f:
        r = csv.reader(f)
        head = next(r)
        if [h.strip() for h in head[:2]] != ["timestamp", "value"]:
            raise SystemExit("%s: header is not 'timestamp,value'" % path)
        return [(row[0], row[1]) for row in r if row]


def builtin_scores(kind, rows, seed_text, seed):
    n = len(rows)
    if kind == "zero":
        return [0.0] * n
    if kind == "random":
        rng = random.Random("%d:%s" % (seed, seed_text))
        return [rng.random() for _ in range(n)]
    # zscore
    warm = min(int(math.floor(0.15 * n)), 750)
    out = []
    cnt = 0
    mean = m2 = 0.0
    for _, v in rows:
        x = float(v)
        a = 0.0
        if cnt >= max(warm, 2):
            sd = math.sqrt(m2 / cnt)
            if sd > 0:
                z = abs(x - mean) / sd
                a = z / (z + 3.0)
        cnt += 1
        d = x - mean
        mean += d / cnt
        m2 += d * (x - mean)
        out.append(a)
    return out


def parse_output(text, expect, where):
    """Rows (timestamp, value, score) from a detector's NAB-style output."""
    rows = []
    cols = (0, 1, 2)
    first = True
    for line_no, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or not "".join(row).strip():
            continue
        cells = [c.strip() for c in row]
        if first:
            first = False
            names = [c.lower() for c in cells]
            if "anomaly_score" in names:
                if "timestamp" not in names or "value" not in names:
                    raise SystemExit("%s: header %r lacks timestamp/value" % (where, row))
                cols = (names.index("timestamp"), names.index("value"),
                        names.index("anomaly_score"))
                continue
        try:
            t, v, s = cells[cols[0]], cells[cols[1]], float(cells[cols[2]])
        except (IndexError, ValueError):
            raise SystemExit("%s:%d: cannot read 'timestamp,value,anomaly_score' from %r"
                             % (where, line_no, ",".join(row)))
        if not math.isfinite(s):
            raise SystemExit("%s:%d: anomaly_score %r is not finite" % (where, line_no, s))
        rows.append((t, v, s))
    if len(rows) != expect:
        raise SystemExit("%s: %d output rows for %d input rows" % (where, len(rows), expect))
    return rows


def run_preshift(args, path, out_path):
    fields = {"preshift": args.preshift, "input": path, "output": out_path + ".raw"}
    extra = shlex.split(args.flags) if args.flags else []
    argv = []
    for tok in shlex.split(args.cmd):
        if tok == "{flags}":
            argv.extend(extra)
        else:
            argv.append(tok.format(**fields))
    writes_file = "{output}" in args.cmd
    t0 = time.monotonic()
    try:
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=args.timeout)
    except FileNotFoundError:
        raise SystemExit("cannot run %s" % argv[0])
    except subprocess.TimeoutExpired:
        raise SystemExit("timed out after %ss: %s" % (args.timeout, shlex.join(argv)))
    dt = time.monotonic() - t0
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr.decode(errors="replace"))
        raise SystemExit("exit status %d: %s" % (proc.returncode, shlex.join(argv)))
    if proc.stderr and args.verbose:
        sys.stderr.write(proc.stderr.decode(errors="replace"))
    if writes_file:
        with open(fields["output"]) as f:
            text = f.read()
        os.remove(fields["output"])
    else:
        text = proc.stdout.decode()
    return text, dt, shlex.join(argv)


def process(args, path, out_path):
    rows = read_input(path)
    key = os.path.relpath(path, args.data)
    if args.detector == "preshift":
        text, dt, cmd = run_preshift(args, path, out_path)
        out = parse_output(text, len(rows), "%s (from %s)" % (key, cmd))
    else:
        t0 = time.monotonic()
        scores = builtin_scores(args.detector, rows, key, args.seed)
        dt = time.monotonic() - t0
        out = [(t, v, s) for (t, v), s in zip(rows, scores)]
    with open(out_path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["timestamp", "value", "anomaly_score"])
        for t, v, s in out:
            w.writerow([t, v, repr(float(s))])
    return key, len(rows), dt


def main(argv=None):
    p = argparse.ArgumentParser(
        description="Score a detector on the NAB subset with nabscore.py.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 2)[2])
    p.add_argument("--detector", choices=("preshift", "zero", "random", "zscore"),
                   default="preshift")
    p.add_argument("--name", help="detector name in the results layout "
                   "(default: the --detector value)")
    p.add_argument("--preshift", default="build/server/preshift",
                   help="preshift binary (default: %(default)s, relative to the current "
                        "directory, else to the repository root)")
    p.add_argument("--flags", default="", help="extra score arguments, spliced in at {flags}")
    p.add_argument("--cmd", default=DEFAULT_CMD,
                   help="command template per file (default: %(default)r); fields: "
                        "{preshift} {flags} {input} {output}")
    p.add_argument("--results", default=os.path.join(REPO, "out", "nab-results"),
                   help="results root (default: %(default)s)")
    p.add_argument("--shared", default=None, help="the shared/ folder (data and tools)")
    p.add_argument("--jobs", type=int, default=1, help="files scored in parallel (default 1)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per file")
    p.add_argument("--seed", type=int, default=0, help="random detector seed")
    p.add_argument("--json", action="store_true", help="print nabscore's JSON report")
    p.add_argument("--verbose", action="store_true", help="show the detector's stderr")
    args = p.parse_args(argv)

    shared = args.shared or find_shared()
    if not shared:
        p.error("shared/ (data/nab and tools/nabscore.py) not found; pass --shared")
    args.data = os.path.join(shared, "data", "nab", "data")
    nabscore = os.path.join(shared, "tools", "nabscore.py")
    labels = os.path.join(shared, "data", "nab", "labels", "combined_windows.json")
    name = args.name or args.detector
    if args.detector == "preshift":
        exe = args.preshift
        if not os.path.isabs(exe) and not os.path.exists(exe) and os.sep in exe:
            alt = os.path.join(REPO, exe)
            if os.path.exists(alt):
                exe = alt
        if os.sep in exe and not os.path.exists(exe):
            p.error("preshift binary not found: %s (build it or pass --preshift)" % exe)
        args.preshift = exe

    files = sorted(glob.glob(os.path.join(args.data, "*", "*.csv")))
    if not files:
        p.error("no NAB files under %s" % args.data)
    jobs = []
    for path in files:
        cat = os.path.basename(os.path.dirname(path))
        d = os.path.join(args.results, name, cat)
        os.makedirs(d, exist_ok=True)
        jobs.append((path, os.path.join(d, "%s_%s" % (name, os.path.basename(path)))))

    t0 = time.monotonic()
    timings = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as ex:
        for key, n, dt in ex.map(lambda j: process(args, *j), jobs):
            timings.append((key, n, dt))
            if args.verbose:
                print("%-60s %7d rows %8.2f s" % (key, n, dt), file=sys.stderr)
    run_s = time.monotonic() - t0

    cmd = [sys.executable, nabscore, "--results", args.results, "--detector", name,
           "--labels", labels, "--data", args.data, "--json"]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    sys.stderr.write(proc.stderr.decode(errors="replace"))
    if proc.returncode != 0:
        raise SystemExit("nabscore failed (%d): %s" % (proc.returncode, shlex.join(cmd)))
    report = json.loads(proc.stdout)
    report["results"] = args.results
    report["rows"] = sum(n for _, n, _ in timings)
    report["detector_seconds"] = round(sum(dt for _, _, dt in timings), 3)
    report["wall_seconds"] = round(run_s, 3)
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        print()
        return 0
    print("NAB subset | detector %s | %d files, %d rows, %d windows | results %s"
          % (name, report["files"], report["rows"], report["windows"],
             os.path.join(args.results, name)))
    print("%-20s %8s %12s %8s %7s" % ("profile", "score", "threshold", "hit", "FP rows"))
    for prof in PROFILES + tuple(k for k in report["profiles"] if k not in PROFILES):
        r = report["profiles"].get(prof)
        if r is None:
            continue
        th = "never" if r["threshold"] is None else "%.6g" % r["threshold"]
        sc = "n/a" if r["score"] is None else "%.2f" % r["score"]
        print("%-20s %8s %12s %8s %7d" % (prof, sc, th,
                                          "%d/%d" % (r["windows_detected"], report["windows"]),
                                          r["fp_rows"]))
    print("detector time %.2f s (%.1f us/row), wall %.2f s"
          % (report["detector_seconds"],
             1e6 * report["detector_seconds"] / max(1, report["rows"]), run_s))
    return 0


if __name__ == "__main__":
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sys.exit(main())
