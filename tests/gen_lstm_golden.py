#!/usr/bin/python3
"""Generate PyTorch reference outputs for preshift's LSTM step.

tests/test_lstm_torch.c checks every backend against these files, so that
"the kernels agree with each other" is anchored to "and with PyTorch": a
wrong gate order, a transposed weight block or a forgotten bias would pass a
cross-backend test written by the same hand, but not this one.

Each case builds nn.LSTM(input, hidden, layers) and an nn.Linear(hidden,
output) head, runs B sequences of T steps in float32 on one thread, and
writes tests/golden/lstm_<name>.txt (format below). Parameters and inputs are
first rounded to 4 significant digits and written back into the modules, so
that PyTorch computes with exactly the values in the file and each of them
prints short (the files stay small); results are printed as the shortest
decimal that reads back as the same float32, so they are exact too.

Before writing, the case is recomputed with numpy from the flat vector in
preshift's layout, which checks this script's own repacking.

File format: whitespace-separated tokens, '#' starts a comment to the end of
the line. Sections in this order, each a keyword, its size, then the values:

    shape <input> <hidden> <layers> <output>
    steps <T> <B>
    params <count>   flat vector, layout of kernels/kernels.h
    inputs <count>   x[t][b][k], count = T * B * input
    outputs <count>  y[t][b][k], count = T * B * output (head at every step)
    state <count>    per sequence b, per layer l: h[0..H) then c[0..H)

Run with Debian's /usr/bin/python3 (it has torch): /usr/bin/python3
tests/gen_lstm_golden.py [--out DIR]. The output does not depend on the
machine's vector width beyond float32 rounding, which the C test's tolerance
covers.
"""

import argparse
import os
import sys

import numpy as np
import torch

# name, input, hidden, layers, output, T, B, seed
CASES = [
    ("h32", 1, 32, 1, 1, 16, 6, 1001),
    ("h16_l2", 3, 16, 2, 3, 12, 5, 1002),
    ("h8_l3", 19, 8, 3, 19, 10, 4, 1003),
    ("h64", 1, 64, 1, 1, 8, 3, 1004),
]


def round4(t):
    """Round a float32 tensor to 4 significant digits, still float32."""
    a = t.detach().numpy().astype(np.float64)
    r = np.array([float("%.4g" % v) for v in a.ravel()], dtype=np.float32)
    return torch.from_numpy(r.reshape(a.shape))


def fmt(v):
    # numpy's float32 repr is the shortest string that reads back exactly.
    s = repr(np.float32(v))
    if s.startswith("np.float32("):  # numpy >= 2 wraps the value
        s = s[len("np.float32(") : -1]
    return s


def flat_params(lstm, head, layers):
    parts = []
    for l in range(layers):
        w_ih = getattr(lstm, "weight_ih_l%d" % l).detach().numpy()
        w_hh = getattr(lstm, "weight_hh_l%d" % l).detach().numpy()
        b_ih = getattr(lstm, "bias_ih_l%d" % l).detach().numpy()
        b_hh = getattr(lstm, "bias_hh_l%d" % l).detach().numpy()
        # PyTorch stores W_ih as (4H x in), gate blocks i, f, g, o by rows;
        # preshift wants [W_ih^T ; W_hh^T], (in + H) x 4H, same gate order.
        parts.append(np.concatenate([w_ih.T, w_hh.T], axis=0).ravel())
        parts.append((b_ih + b_hh).astype(np.float32))
    parts.append(head.weight.detach().numpy().T.ravel())
    parts.append(head.bias.detach().numpy())
    return np.concatenate(parts).astype(np.float32)


def numpy_reference(p, inp, hid, layers, out, x):
    """Preshift's equations on the flat vector, in float64."""
    T, B, _ = x.shape
    p = p.astype(np.float64)
    h = np.zeros((layers, B, hid))
    c = np.zeros((layers, B, hid))
    ys = np.zeros((T, B, out))
    sig = lambda z: 1.0 / (1.0 + np.exp(-z))
    for t in range(T):
        a = x[t].astype(np.float64)
        off = 0
        for l in range(layers):
            rows = (inp if l == 0 else hid) + hid
            w = p[off : off + rows * 4 * hid].reshape(rows, 4 * hid)
            off += rows * 4 * hid
            b = p[off : off + 4 * hid]
            off += 4 * hid
            g = np.concatenate([a, h[l]], axis=1) @ w + b
            i_, f_, g_, o_ = (g[:, k * hid : (k + 1) * hid] for k in range(4))
            c[l] = sig(f_) * c[l] + sig(i_) * np.tanh(g_)
            h[l] = sig(o_) * np.tanh(c[l])
            a = h[l]
        wy = p[off : off + hid * out].reshape(hid, out)
        by = p[off + hid * out : off + hid * out + out]
        ys[t] = a @ wy + by
    return ys, h, c


def write_section(f, name, values, per_line=8):
    f.write("%s %d\n" % (name, len(values)))
    for i in range(0, len(values), per_line):
        f.write(" ".join(fmt(v) for v in values[i : i + per_line]) + "\n")


def make_case(outdir, name, inp, hid, layers, out, T, B, seed):
    torch.manual_seed(seed)
    lstm = torch.nn.LSTM(inp, hid, num_layers=layers, batch_first=False)
    head = torch.nn.Linear(hid, out)
    with torch.no_grad():
        for mod in (lstm, head):
            for prm in mod.parameters():
                prm.copy_(round4(prm))
    # Inputs of a few units: enough to push some gates towards saturation.
    x = round4(torch.randn(T, B, inp) * 2.0)

    with torch.inference_mode():
        seq, (h_n, c_n) = lstm(x)
        y = head(seq)

    p = flat_params(lstm, head, layers)
    assert p.size == expected_count(inp, hid, layers, out)
    ys, h_ref, c_ref = numpy_reference(p, inp, hid, layers, out, x.numpy())
    err = max(
        np.abs(ys - y.numpy()).max(),
        np.abs(h_ref - h_n.numpy()).max(),
        np.abs(c_ref - c_n.numpy()).max(),
    )
    if err > 1e-5:
        sys.exit("%s: numpy repacking disagrees with PyTorch by %g" % (name, err))

    # state: per sequence, per layer, h then c
    state = np.stack([h_n.numpy(), c_n.numpy()], axis=2)  # layers, B, 2, H
    state = state.transpose(1, 0, 2, 3).ravel()

    path = os.path.join(outdir, "lstm_%s.txt" % name)
    with open(path, "w") as f:
        f.write("# preshift LSTM golden '%s': generated by tests/gen_lstm_golden.py\n" % name)
        f.write("# torch %s, numpy %s, seed %d, float32, 1 thread\n"
                % (torch.__version__, np.__version__, seed))
        f.write("shape %d %d %d %d\n" % (inp, hid, layers, out))
        f.write("steps %d %d\n" % (T, B))
        write_section(f, "params", p)
        write_section(f, "inputs", x.numpy().ravel())
        write_section(f, "outputs", y.numpy().ravel())
        write_section(f, "state", state)
    print("%s: %d params, max |numpy - torch| %.2g" % (path, p.size, err))


def expected_count(inp, hid, layers, out):
    n = 0
    for l in range(layers):
        n += ((inp if l == 0 else hid) + hid) * 4 * hid + 4 * hid
    return n + hid * out + out


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(here, "golden"), help="output folder")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float32)
    os.makedirs(args.out, exist_ok=True)
    for case in CASES:
        make_case(args.out, *case)


if __name__ == "__main__":
    main()
