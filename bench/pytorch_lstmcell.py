#!/usr/bin/python3
"""PyTorch's nn.LSTMCell step: the peer `preshift bench kernels` compares with.

Run by bench/bench_kernels.c through popen in the middle of its own run, the
C side waiting meanwhile: never alongside a C measurement (two processes
timing on two cores would measure each other). It measures the grid it is given and writes one JSON
object per measurement on stdout, the same keys the C side prints; progress
goes to stderr. The methodology is the C side's: warm up, then time single
steps until --min-time has passed and at least 3 were timed, and report the
median. The state is carried from step to step as it would be in a server,
and the step runs under torch.inference_mode() with the thread count set
explicitly (PyTorch defaults to one thread on these machines).

If torch cannot be imported it prints one {"error": ...} line and exits 3,
so the caller can say why the peer is missing and go on.

    /usr/bin/python3 bench/pytorch_lstmcell.py --rows 1000,10000 \
        --hidden 32,64 --threads 1,2 --min-time 0.5
"""

import argparse
import json
import sys
import time


def int_list(s):
    vals = [int(v) for v in s.split(",")]
    if not vals or min(vals) < 1:
        raise argparse.ArgumentTypeError("expected positive integers, got %r" % s)
    return vals


def measure(step, min_time):
    # Warm-up: the first calls allocate and pick kernels.
    warm_until = time.perf_counter() + min(0.1, max(min_time / 2, 0.0))
    step()
    while time.perf_counter() < warm_until:
        step()
    times = []
    start = time.perf_counter()
    while len(times) < 3 or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    times.sort()
    n = len(times)
    median = times[n // 2] if n % 2 else 0.5 * (times[n // 2 - 1] + times[n // 2])
    return median, n


def bench_one(torch, rows, hidden, min_time):
    # A function of its own so its tensors (several rows x 4H at a million
    # rows) are freed before the next cell allocates.
    with torch.inference_mode():
        cell = torch.nn.LSTMCell(1, hidden)
        x = torch.randn(rows, 1)
        state = [torch.zeros(rows, hidden), torch.zeros(rows, hidden)]

        def step():
            state[0], state[1] = cell(x, (state[0], state[1]))

        return measure(step, min_time)


def main():
    ap = argparse.ArgumentParser(description="PyTorch LSTMCell step benchmark")
    ap.add_argument("--rows", type=int_list, default=[1000, 10000, 100000, 1000000])
    ap.add_argument("--hidden", type=int_list, default=[32, 64])
    ap.add_argument("--threads", type=int_list, default=[1, 2])
    ap.add_argument("--min-time", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    try:
        import torch
    except Exception as e:  # ImportError, or a broken install
        print(json.dumps({"error": "cannot import torch with %s: %s" % (sys.executable, e)}),
              flush=True)
        return 3

    torch.manual_seed(args.seed)
    for rows in args.rows:
        for hidden in args.hidden:
            for threads in args.threads:
                torch.set_num_threads(threads)
                print("pytorch: rows=%d hidden=%d threads=%d" % (rows, hidden, threads),
                      file=sys.stderr, flush=True)
                try:
                    median, runs = bench_one(torch, rows, hidden, args.min_time)
                except (RuntimeError, MemoryError) as e:  # out of memory at a million rows
                    print("pytorch: rows=%d hidden=%d threads=%d failed: %s"
                          % (rows, hidden, threads, e), file=sys.stderr, flush=True)
                    continue
                flops = 2.0 * rows * (1 + hidden) * 4 * hidden
                print(json.dumps({
                    "impl": "pytorch",
                    "shape": "step",
                    "rows": rows,
                    "hidden": hidden,
                    "threads": threads,
                    "median_s": median,
                    "runs": runs,
                    "steps_per_s": rows / median,
                    "gflops": flops / median * 1e-9,
                    "torch": torch.__version__,
                }), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
