#!/usr/bin/env python3
"""Evaluate a detector on ASD (12 servers x 19 metrics): baseline on train,
score test online, report threshold-free and event-level measures.

Run with /usr/bin/python3 (needs numpy; nothing else outside the standard
library). See bench/eval/README.md for the commands, the definitions and the
reference figures.

Detectors (--detector):
  preshift  run the preshift binary twice per server:
              test run : {preshift} score --history train/omi-N.txt.gz test/omi-N.txt.gz
              train run: {preshift} score train/omi-N.txt.gz
            and read the PFP column of its output (score,pfp,top_metric; a first
            line that is not numeric is skipped as a header). The command
            templates are configurable (--test-cmd, --train-cmd).
  zscore    built-in reference: per-metric z against the train mean/std
            (metrics constant on train are dropped), row score = mean z^2.
  pca       built-in reference: PCA fitted on standardized train (constant
            metrics dropped), k = fewest components explaining >= 90 % of the
            variance, row score = squared reconstruction error.
  files     read precomputed outputs DIR/omi-N.test.csv and DIR/omi-N.train.csv
            (preshift's layout) from --scores-dir.

Measures per server (test rows only):
  AUPRC     average precision, step-wise: sum over distinct score levels,
            highest first, of (recall gain) x (precision at that level). Tied
            scores form one level (no optimistic ordering inside ties).
  AUPRC-tz  trapezoidal area under the PR curve with the point (recall 0,
            precision 1) prepended (what sklearn's auc(precision_recall_curve)
            gives); reproduces the issue's reference figures best.
  events    maximal runs of 1s in test_label (76 in all).
  alarms    test rows with score >= threshold; alarm episodes are maximal runs
            of alarm rows, merged when at most --gap rows apart.
  recall    events with an alarm row in [start - lead, end].
  FA/day    episodes that overlap no [start - lead, end + after] of any event,
            divided by the test length in days (rows x 5 min / 1440 min).
  delay     first alarm row in [start - lead, end] minus start, in rows
            (x 5 min); negative = before the labelled start. Median over the
            detected events.
  early     share of all events whose first alarm comes before the start.

Threshold (from train only, never from test): --threshold-rule
  episodes:R  (default R=1) scan thresholds from the highest train score
              down; keep the lowest one at which train still has at most R
              alarm episodes per day (with the same --gap), stopping at the
              first threshold that exceeds R.
  quantile:Q  the lowest train score level v such that at most a share 1-Q
              of train rows have score >= v.
  value:V     a fixed threshold V (e.g. value:0.5 on a PFP).
If no level satisfies the rule, the threshold is just above the train maximum.
For the preshift train run, the warm-up rows at the start of train (the
baseline, min(15 %, 750) rows) are left out of the threshold choice
(--train-skip).
"""

import argparse
import bisect
import gzip
import json
import math
import os
import shlex
import signal
import subprocess
import sys
import time

try:
    import numpy as np
except ImportError:  # pragma: no cover
    sys.exit("asd_eval.py needs numpy: run it with /usr/bin/python3")

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
MINUTES_PER_ROW = 5.0
SERVERS = list(range(1, 13))

DEFAULT_TEST_CMD = "{preshift} score {flags} --history {train} {test}"
DEFAULT_TRAIN_CMD = "{preshift} score {flags} {train}"

PRESETS = {
    # The protocol that reproduces the reference figures.
    "issue": {"threshold_rule": "quantile:0.99", "gap": 0, "lead": 0, "after": 0},
    # The default protocol (also what the target is checked with).
    "default": {"threshold_rule": "episodes:1", "gap": 0, "lead": 12, "after": 0},
}


def find_data_dir():
    for cand in (os.environ.get("PRESHIFT_ASD"),
                 os.path.join(REPO, "shared", "data", "asd"),
                 os.path.join(REPO, "..", "shared", "data", "asd"),
                 "/work/shared/data/asd"):
        if cand and os.path.isdir(os.path.join(cand, "train")):
            return os.path.normpath(cand)
    return None


# ----------------------------------------------------------------- data ----

def read_matrix(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as f:
        m = np.loadtxt(f, delimiter=",", ndmin=2)
    return m


def read_labels(path):
    with open(path) as f:
        return np.array([int(line.strip()) for line in f if line.strip()], dtype=np.int8)


def read_interpretation(path, n):
    """Events from interpretation_label: 'start-end:metrics' per line."""
    events = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            span = line.split(":", 1)[0]
            a, b = span.split("-")
            events.append((int(a), min(int(b), n - 1)))
    events.sort()
    return events


def read_detector_output(path_or_text, column, expect_rows, where):
    """Parse preshift's 'score,pfp,top_metric' output (header optional)."""
    lines = path_or_text.splitlines()
    col = int(column) if column.isdigit() else {"score": 0, "pfp": 1}.get(column)
    values = []
    first = True
    for line_no, line in enumerate(lines, start=1):
        line = line.strip()
        if not line:
            continue
        cells = [c.strip() for c in line.split(",")]
        if first:
            first = False
            try:
                float(cells[0])
            except ValueError:  # header line
                names = [c.lower() for c in cells]
                if column.lower() in names:
                    col = names.index(column.lower())
                elif col is None:
                    raise SystemExit("%s: no column %r in header %r" % (where, column, line))
                continue
        if col is None:
            try:
                col = int(column)
            except ValueError:
                raise SystemExit("%s: no header, cannot find column %r" % (where, column))
        try:
            v = float(cells[col])
        except (IndexError, ValueError):
            raise SystemExit("%s:%d: cannot read column %s from %r" % (where, line_no, column, line))
        if not math.isfinite(v):
            raise SystemExit("%s:%d: non-finite value %r" % (where, line_no, cells[col]))
        values.append(v)
    if expect_rows is not None and len(values) != expect_rows:
        raise SystemExit("%s: %d score rows, expected %d (one per input row)"
                         % (where, len(values), expect_rows))
    return np.array(values, dtype=float)


# ------------------------------------------------------------ detectors ----

def _standardizer(train):
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    keep = std > 0  # metrics constant on train carry no z information
    return mean, std, keep


def zscore_scores(train, rows):
    mean, std, keep = _standardizer(train)
    z = (rows[:, keep] - mean[keep]) / std[keep]
    return (z * z).mean(axis=1)


def pca_scores(train, rows, variance=0.90, scale="std"):
    mean, std, keep = _standardizer(train)
    div = std[keep] if scale == "std" else 1.0
    a = (train[:, keep] - mean[keep]) / div
    b = (rows[:, keep] - mean[keep]) / div
    _, s, vt = np.linalg.svd(a, full_matrices=False)
    share = np.cumsum(s * s) / np.sum(s * s)
    k = int(np.searchsorted(share, variance - 1e-12) + 1)
    v = vt[:k].T
    r = b - (b @ v) @ v.T
    return (r * r).sum(axis=1), k


def run_command(argv, where, timeout):
    t0 = time.monotonic()
    try:
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=timeout)
    except FileNotFoundError:
        raise SystemExit("%s: cannot run %s" % (where, argv[0]))
    except subprocess.TimeoutExpired:
        raise SystemExit("%s: timed out after %ss: %s" % (where, timeout, shlex.join(argv)))
    dt = time.monotonic() - t0
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr.decode(errors="replace"))
        raise SystemExit("%s: exit status %d: %s" % (where, proc.returncode, shlex.join(argv)))
    if proc.stderr:
        sys.stderr.write(proc.stderr.decode(errors="replace"))
    return proc.stdout.decode(), dt, shlex.join(argv)


# -------------------------------------------------------------- metrics ----

def pr_levels(scores, labels):
    """Precision and recall at every distinct score level, highest first."""
    order = np.argsort(-scores, kind="mergesort")
    s = scores[order]
    y = labels[order].astype(np.int64)
    tp = np.cumsum(y)
    k = np.arange(1, len(y) + 1)
    last = np.r_[s[1:] != s[:-1], True]  # last row of each tie group
    tp, k = tp[last], k[last]
    pos = y.sum()
    return tp / k, tp / pos


def average_precision(scores, labels):
    """Step-wise AUPRC: sum_k (R_k - R_{k-1}) * P_k over distinct levels."""
    if labels.sum() == 0:
        return float("nan")
    p, r = pr_levels(scores, labels)
    return float(np.sum(np.diff(np.r_[0.0, r]) * p))


def auprc_trapezoid(scores, labels):
    """Trapezoidal area under (recall, precision), starting at (0, 1)."""
    if labels.sum() == 0:
        return float("nan")
    p, r = pr_levels(scores, labels)
    p = np.r_[1.0, p]
    r = np.r_[0.0, r]
    return float(np.sum(np.diff(r) * (p[1:] + p[:-1]) / 2.0))


def runs(mask):
    """(starts, ends) of maximal runs of True, ends inclusive."""
    d = np.diff(np.r_[0, mask.astype(np.int8), 0])
    return np.flatnonzero(d == 1), np.flatnonzero(d == -1) - 1


def merge_runs(starts, ends, gap):
    """Merge runs separated by at most `gap` non-alarm rows."""
    out = []
    for a, b in zip(starts.tolist(), ends.tolist()):
        if out and a - out[-1][1] - 1 <= gap:
            out[-1][1] = b
        else:
            out.append([a, b])
    return [tuple(x) for x in out]


def parse_rule(text):
    kind, _, arg = text.partition(":")
    if kind not in ("episodes", "quantile", "value"):
        raise SystemExit("unknown threshold rule %r (episodes:R, quantile:Q, value:V)" % text)
    try:
        val = float(arg) if arg else (1.0 if kind == "episodes" else None)
    except ValueError:
        raise SystemExit("bad threshold rule %r" % text)
    if val is None:
        raise SystemExit("threshold rule %r needs a number" % text)
    if kind == "quantile" and not 0.0 < val < 1.0:
        raise SystemExit("quantile must be in (0, 1): %r" % text)
    return kind, val


def above_max(x):
    return float(np.nextafter(np.max(x), np.inf))


def choose_threshold(train_scores, rule, gap):
    kind, val = rule
    s = np.asarray(train_scores, dtype=float)
    n = len(s)
    if kind == "value":
        return val
    order = np.argsort(-s, kind="mergesort")
    vals = s[order]
    if kind == "quantile":
        allowed = (1.0 - val) * n
        best = above_max(s)
        i = 0
        while i < n:
            level = vals[i]
            while i < n and vals[i] == level:
                i += 1
            if i <= allowed + 1e-9:
                best = float(level)
            else:
                break
        return best
    # episodes: count alarm episodes on train while lowering the threshold.
    days = n * MINUTES_PER_ROW / 1440.0
    limit = val * days
    alarm = []  # sorted alarm row positions
    episodes = 0
    best = above_max(s)
    i = 0
    while i < n:
        level = vals[i]
        while i < n and vals[i] == level:
            p = int(order[i])
            j = bisect.bisect_left(alarm, p)
            left = alarm[j - 1] if j > 0 else None
            right = alarm[j] if j < len(alarm) else None
            if left is not None and right is not None and right - left - 1 <= gap:
                pass  # already one episode across p
            else:
                episodes += 1
                if left is not None and p - left - 1 <= gap:
                    episodes -= 1
                if right is not None and right - p - 1 <= gap:
                    episodes -= 1
            alarm.insert(j, p)
            i += 1
        if episodes <= limit + 1e-9:
            best = float(level)
        else:
            break
    return best


def evaluate_events(scores, labels, events, threshold, gap, lead, after):
    n = len(scores)
    alarm = scores >= threshold
    idx = np.flatnonzero(alarm)
    per_event = []
    for a, b in events:
        lo = max(0, a - lead)
        j = np.searchsorted(idx, lo)
        first = int(idx[j]) if j < len(idx) and idx[j] <= b else None
        per_event.append({"start": a, "end": b,
                          "first_alarm": first,
                          "delay_rows": None if first is None else first - a})
    episodes = merge_runs(*runs(alarm), gap)
    false_alarms = 0
    for a, b in episodes:
        hit = False
        for s, e in events:
            if a <= e + after and b >= s - lead:
                hit = True
                break
        if not hit:
            false_alarms += 1
    days = n * MINUTES_PER_ROW / 1440.0
    detected = [e for e in per_event if e["first_alarm"] is not None]
    delays = [e["delay_rows"] for e in detected]
    return {
        "events": len(events),
        "detected": len(detected),
        "recall": len(detected) / len(events) if events else float("nan"),
        "episodes": len(episodes),
        "false_alarms": false_alarms,
        "fa_per_day": false_alarms / days,
        "alarm_rows": int(alarm.sum()),
        "median_delay_rows": float(np.median(delays)) if delays else None,
        "early": sum(1 for d in delays if d < 0),
        "early_share": sum(1 for d in delays if d < 0) / len(events) if events else float("nan"),
        "per_event": per_event,
    }


# ----------------------------------------------------------------- main ----

def server_scores(args, data_dir, n, train, test, savedir):
    """Return (train_scores, train_skip, test_scores, info) for one server."""
    name = "omi-%d" % n
    train_path = os.path.join(data_dir, "train", name + ".txt.gz")
    test_path = os.path.join(data_dir, "test", name + ".txt.gz")
    info = {}
    if args.detector == "zscore":
        return zscore_scores(train, train), 0, zscore_scores(train, test), info
    if args.detector == "pca":
        tr, k = pca_scores(train, train, args.pca_variance, args.pca_scale)
        te, _ = pca_scores(train, test, args.pca_variance, args.pca_scale)
        info["pca_components"] = k
        return tr, 0, te, info
    if args.detector == "files":
        texts = []
        for part in ("test", "train"):
            p = os.path.join(args.scores_dir, "%s.%s.csv" % (name, part))
            with open(p) as f:
                texts.append((f.read(), p))
        te = read_detector_output(texts[0][0], args.column, len(test), texts[0][1])
        tr = read_detector_output(texts[1][0], args.column, len(train), texts[1][1])
    else:  # preshift
        fields = {"preshift": args.preshift, "train": train_path, "test": test_path,
                  "flags": "", "server": name}
        extra = shlex.split(args.flags) if args.flags else []

        def run(template, where):
            argv = []
            for tok in shlex.split(template):
                if tok == "{flags}":  # expands to several arguments
                    argv.extend(extra)
                else:
                    argv.append(tok.format(**fields))
            return run_command(argv, where, args.timeout)

        text, dt, cmd = run(args.test_cmd, name + " test run")
        info["test_cmd"] = cmd
        info["test_seconds"] = round(dt, 3)
        te = read_detector_output(text, args.column, len(test), name + " test run")
        if savedir:
            with open(os.path.join(savedir, name + ".test.csv"), "w") as f:
                f.write(text)
        text, dt, cmd = run(args.train_cmd, name + " train run")
        info["train_cmd"] = cmd
        info["train_seconds"] = round(dt, 3)
        tr = read_detector_output(text, args.column, len(train), name + " train run")
        if savedir:
            with open(os.path.join(savedir, name + ".train.csv"), "w") as f:
                f.write(text)
    if args.train_skip == "auto":
        skip = min(int(math.floor(0.15 * len(train))), 750)
    else:
        skip = int(args.train_skip)
    return tr, skip, te, info


def fmt(v, spec):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return format(v, spec)


def main(argv=None):
    p = argparse.ArgumentParser(
        description="Evaluate a detector on ASD: AUPRC, event recall, false alarms "
                    "per server-day at a threshold chosen on train, detection delay.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Definitions: see the module docstring and bench/eval/README.md.")
    p.add_argument("--detector", choices=("preshift", "zscore", "pca", "files"),
                   default="preshift")
    p.add_argument("--data", default=None, help="ASD directory (default: shared/data/asd)")
    p.add_argument("--servers", default=None,
                   help="comma-separated server numbers (default: 1-12)")
    p.add_argument("--preshift", default="build/server/preshift",
                   help="preshift binary (default: %(default)s, relative to the "
                        "current directory, else to the repository root)")
    p.add_argument("--flags", default="", help="extra arguments spliced in at {flags}")
    p.add_argument("--test-cmd", default=DEFAULT_TEST_CMD,
                   help="test run template (default: %(default)r); fields: {preshift} "
                        "{flags} {train} {test} {server}")
    p.add_argument("--train-cmd", default=DEFAULT_TRAIN_CMD,
                   help="train run template, scored for the threshold "
                        "(default: %(default)r)")
    p.add_argument("--column", default="pfp",
                   help="output column to evaluate: pfp (default), score, or a 0-based index")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per command")
    p.add_argument("--scores-dir", help="with --detector files: DIR/omi-N.{test,train}.csv")
    p.add_argument("--save-scores", metavar="DIR",
                   help="keep the preshift outputs as DIR/omi-N.{test,train}.csv")
    p.add_argument("--train-skip", default=None,
                   help="train rows left out of the threshold choice: a number or "
                        "'auto' = min(15%%, 750) (default: auto for preshift/files, "
                        "0 for the built-ins)")
    p.add_argument("--pca-variance", type=float, default=0.90,
                   help="pca: share of train variance the components keep (default 0.90)")
    p.add_argument("--pca-scale", choices=("std", "none"), default="std",
                   help="pca: standardize each metric by its train std (default), or "
                        "only center it (the data are already scaled to [0,1])")
    p.add_argument("--preset", choices=sorted(PRESETS), default="default",
                   help="protocol defaults: 'default' (episodes:1, lead 12) or 'issue' "
                        "(quantile:0.99, lead 0: reproduces the issue's reference figures); "
                        "the options below override it")
    p.add_argument("--threshold-rule", default=None,
                   help="episodes:R | quantile:Q | value:V (see the docstring)")
    p.add_argument("--gap", type=int, default=None,
                   help="merge alarm runs at most this many rows apart into one episode")
    p.add_argument("--lead", type=int, default=None,
                   help="rows before an event's start in which an alarm counts as a detection")
    p.add_argument("--after", type=int, default=None,
                   help="rows after an event's end in which an alarm is not a false alarm")
    p.add_argument("--events", choices=("labels", "interpretation"), default="labels",
                   help="events = maximal runs of 1s in test_label (default), or the "
                        "spans in interpretation_label")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--per-event", action="store_true",
                   help="with --json: include every event's first alarm and delay")
    args = p.parse_args(argv)

    preset = PRESETS[args.preset]
    for key in ("threshold_rule", "gap", "lead", "after"):
        if getattr(args, key) is None:
            setattr(args, key, preset[key])
    rule = parse_rule(args.threshold_rule)
    if args.train_skip is None:
        args.train_skip = "auto" if args.detector in ("preshift", "files") else "0"
    if args.detector == "files" and not args.scores_dir:
        p.error("--detector files needs --scores-dir")
    data_dir = args.data or find_data_dir()
    if not data_dir or not os.path.isdir(os.path.join(data_dir, "train")):
        p.error("ASD data not found; pass --data DIR")
    if args.detector == "preshift":
        exe = args.preshift
        if not os.path.isabs(exe) and not os.path.exists(exe) and os.sep in exe:
            alt = os.path.join(REPO, exe)
            if os.path.exists(alt):
                exe = alt
        if os.sep in exe and not os.path.exists(exe):
            p.error("preshift binary not found: %s (build it or pass --preshift)" % exe)
        args.preshift = exe
    if args.save_scores:
        os.makedirs(args.save_scores, exist_ok=True)
    servers = SERVERS if not args.servers else [int(x) for x in args.servers.split(",") if x]

    t_start = time.monotonic()
    results = []
    all_scores, all_labels = [], []
    for n in servers:
        name = "omi-%d" % n
        train = read_matrix(os.path.join(data_dir, "train", name + ".txt.gz"))
        test = read_matrix(os.path.join(data_dir, "test", name + ".txt.gz"))
        labels = read_labels(os.path.join(data_dir, "test_label", name + ".txt"))
        if len(labels) != len(test):
            raise SystemExit("%s: %d labels for %d test rows" % (name, len(labels), len(test)))
        if args.events == "labels":
            events = list(zip(*[x.tolist() for x in runs(labels == 1)]))
        else:
            events = read_interpretation(
                os.path.join(data_dir, "interpretation_label", name + ".txt"), len(test))
        tr, skip, te, info = server_scores(args, data_dir, n, train, test, args.save_scores)
        th = choose_threshold(tr[skip:], rule, args.gap)
        ev = evaluate_events(te, labels, events, th, args.gap, args.lead, args.after)
        delays = [e["delay_rows"] for e in ev["per_event"] if e["delay_rows"] is not None]
        if not args.per_event:
            ev.pop("per_event")
        r = {"server": name, "threshold": th, "train_rows_for_threshold": len(tr) - skip,
             "train_alarm_share": float(np.mean(tr[skip:] >= th)),
             "auprc": average_precision(te, labels),
             "auprc_trapz": auprc_trapezoid(te, labels),
             "test_rows": len(te), "positive_rows": int(labels.sum())}
        r.update(ev)
        r.update(info)
        r["_delays"] = delays
        results.append(r)
        all_scores.append(te)
        all_labels.append(labels)

    def mean(key):
        vals = [r[key] for r in results if r[key] is not None and not
                (isinstance(r[key], float) and math.isnan(r[key]))]
        return float(np.mean(vals)) if vals else None

    ev_total = sum(r["events"] for r in results)
    det_total = sum(r["detected"] for r in results)
    summary = {
        "mean_auprc": mean("auprc"),
        "mean_auprc_trapz": mean("auprc_trapz"),
        "mean_recall": mean("recall"),
        "mean_fa_per_day": mean("fa_per_day"),
        "events": ev_total,
        "detected": det_total,
        "pooled_recall": det_total / ev_total if ev_total else None,
        "false_alarms": sum(r["false_alarms"] for r in results),
        "early": sum(r["early"] for r in results),
        "early_share": sum(r["early"] for r in results) / ev_total if ev_total else None,
        "pooled_auprc": average_precision(np.concatenate(all_scores),
                                          np.concatenate(all_labels)),
        "seconds": round(time.monotonic() - t_start, 2),
    }
    summary["target"] = {
        "auprc_ge_0.30": summary["mean_auprc"] is not None and summary["mean_auprc"] >= 0.30,
        "recall_ge_0.75": summary["pooled_recall"] is not None and summary["pooled_recall"] >= 0.75,
        "fa_per_day_le_1": summary["mean_fa_per_day"] is not None and summary["mean_fa_per_day"] <= 1.0,
    }
    report = {
        "detector": args.detector,
        "protocol": {"preset": args.preset, "threshold_rule": args.threshold_rule,
                     "gap": args.gap, "lead": args.lead, "after": args.after,
                     "events": args.events, "train_skip": args.train_skip,
                     "minutes_per_row": MINUTES_PER_ROW,
                     "column": args.column if args.detector in ("preshift", "files") else None,
                     "pca_variance": args.pca_variance if args.detector == "pca" else None,
                     "pca_scale": args.pca_scale if args.detector == "pca" else None},
        "servers": results,
        "summary": summary,
    }
    report["summary"].update(_pooled_delay(results))
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        print()
        return 0
    print_table(report)
    return 0


def _pooled_delay(results):
    """Median delay over the detected events of all servers."""
    delays = []
    for r in results:
        delays.extend(r.pop("_delays", []))
    return {"median_delay_rows": float(np.median(delays)) if delays else None,
            "median_delay_minutes": float(np.median(delays)) * MINUTES_PER_ROW
            if delays else None}


def print_table(report):
    pr = report["protocol"]
    print("ASD | detector %s | threshold %s | gap %d | lead %d | after %d | events: %s"
          % (report["detector"], pr["threshold_rule"], pr["gap"], pr["lead"], pr["after"],
             pr["events"]))
    head = ("%-7s %7s %8s %6s %9s %6s %4s %7s %8s %7s %6s %10s"
            % ("server", "AUPRC", "AUPRC-tz", "events", "detected", "recall", "FA",
               "FA/day", "delay", "min", "early", "threshold"))
    print(head)
    print("-" * len(head))
    for r in report["servers"]:
        d = r["median_delay_rows"]
        print("%-7s %7s %8s %6d %9d %6s %4d %7s %8s %7s %6d %10s"
              % (r["server"], fmt(r["auprc"], ".4f"), fmt(r["auprc_trapz"], ".4f"),
                 r["events"], r["detected"], fmt(r["recall"], ".3f"), r["false_alarms"],
                 fmt(r["fa_per_day"], ".2f"), fmt(d, ".1f"),
                 fmt(None if d is None else d * MINUTES_PER_ROW, ".0f"),
                 r["early"], "%.6g" % r["threshold"]))
    s = report["summary"]
    print("-" * len(head))
    d = s["median_delay_rows"]
    print("%-7s %7s %8s %6d %9d %6s %4d %7s %8s %7s %6d"
          % ("all", fmt(s["mean_auprc"], ".4f"), fmt(s["mean_auprc_trapz"], ".4f"),
             s["events"], s["detected"], fmt(s["pooled_recall"], ".3f"), s["false_alarms"],
             fmt(s["mean_fa_per_day"], ".2f"), fmt(d, ".1f"),
             fmt(None if d is None else d * MINUTES_PER_ROW, ".0f"), s["early"]))
    print("all: recall = detected/events over all servers (mean of per-server recalls %s); "
          "AUPRC, AUPRC-tz, FA/day = mean over servers;"
          % fmt(s["mean_recall"], ".3f"))
    print("     delay = median over the detected events of all servers (rows; min = minutes); "
          "early = alarmed before the start (share %s)" % fmt(s["early_share"], ".3f"))
    print("     AUPRC of all servers' rows pooled %s; %.1f s"
          % (fmt(s["pooled_auprc"], ".4f"), s["seconds"]))
    t = s["target"]
    print("issue target: AUPRC >= 0.30 %s, event recall >= 0.75 %s, FA/day <= 1 %s"
          % tuple("yes" if t[k] else "NO" for k in ("auprc_ge_0.30", "recall_ge_0.75",
                                                      "fa_per_day_le_1")))

if __name__ == "__main__":
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sys.exit(main())
