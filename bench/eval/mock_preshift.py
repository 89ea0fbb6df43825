#!/usr/bin/env python3
"""A stand-in for `preshift score`, to test the evaluation harnesses
(asd_eval.py, nab_eval.py) end to end without the real binary.

It follows the command's contract from the issue (a subset of it):

  mock_preshift.py score [--history FILE] [--warmup N] [-o FILE] INPUT

  INPUT/FILE: CSV, plain or gzip, or '-'. NAB style (header 'timestamp,value')
  or headerless numeric columns. Output: 'timestamp,value,anomaly_score' for
  NAB-style input, else 'score,pfp,top_metric', each with a header line.

Scoring (a reference baseline, not preshift's method): the baseline is the
history (or the first N warm-up rows, default min(15 %, 750)); each row's score
is the mean z^2 over the metrics that vary in the baseline, pfp = score /
(score + 10), top_metric = the 1-based metric with the largest |z|. NAB
style: online z of the value against all earlier rows, anomaly_score =
|z| / (|z| + 3). Standard library only.
"""

import argparse
import gzip
import io
import math
import sys


def open_text(path):
    if path == "-":
        data = sys.stdin.buffer.read()
    else:
        with open(path, "rb") as f:
            data = f.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return io.StringIO(data.decode())


def read_csv(path):
    """Return (nab, rows): nab rows are (timestamp, value); others float lists."""
    f = open_text(path)
    lines = [ln.rstrip("\r\n") for ln in f if ln.strip()]
    if not lines:
        return False, []
    head = [c.strip().lower() for c in lines[0].split(",")]
    if head[:2] == ["timestamp", "value"]:
        rows = []
        for ln in lines[1:]:
            t, v = ln.split(",")[:2]
            rows.append((t, float(v)))
        return True, rows
    try:
        [float(c) for c in lines[0].split(",")]
    except ValueError:
        lines = lines[1:]  # some other header
    return False, [[float(c) for c in ln.split(",")] for ln in lines]


def stats(rows):
    m = len(rows[0])
    mean = [sum(r[j] for r in rows) / len(rows) for j in range(m)]
    std = [math.sqrt(sum((r[j] - mean[j]) ** 2 for r in rows) / len(rows)) for j in range(m)]
    return mean, std


def score(args):
    nab, rows = read_csv(args.input)
    out = open(args.output, "w") if args.output and args.output != "-" else sys.stdout
    warm = args.warmup if args.warmup is not None else min(int(0.15 * len(rows)), 750)
    if nab:
        out.write("timestamp,value,anomaly_score\n")
        n = 0
        mean = m2 = 0.0
        for t, v in rows:
            a = 0.0
            if n >= max(warm, 2):
                sd = math.sqrt(m2 / n)
                if sd > 0:
                    z = abs(v - mean) / sd
                    a = z / (z + 3.0)
            n += 1
            d = v - mean
            mean += d / n
            m2 += d * (v - mean)
            out.write("%s,%s,%.6f\n" % (t, repr(v), a))
        return 0
    if args.history:
        hnab, base = read_csv(args.history)
        if hnab:
            sys.exit("mock_preshift: history is NAB style but the input is not")
    else:
        base = rows[:max(warm, 1)]
    mean, std = stats(base)
    keep = [j for j, s in enumerate(std) if s > 0]
    out.write("score,pfp,top_metric\n")
    for r in rows:
        zs = [(r[j] - mean[j]) / std[j] for j in keep]
        s = sum(z * z for z in zs) / len(zs) if zs else 0.0
        top = keep[max(range(len(zs)), key=lambda i: abs(zs[i]))] + 1 if zs else 0
        out.write("%r,%r,%d\n" % (s, s / (s + 10.0), top))
    return 0


def main():
    p = argparse.ArgumentParser(prog="mock_preshift.py")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("score")
    s.add_argument("--history")
    s.add_argument("--warmup", type=int)
    s.add_argument("-o", "--output")
    s.add_argument("input")
    args = p.parse_args()
    return score(args)


if __name__ == "__main__":
    sys.exit(main())
