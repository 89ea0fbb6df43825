#!/usr/bin/python3
"""Generate statsmodels reference fits for preshift's ARIMA estimation.

tests/test_arima.c checks core/arima.c against these files: the filter,
given statsmodels' coefficients, must reproduce statsmodels' one-step
predictions (after the start-up, where statsmodels' exact Kalman
initialization and our pre-sample mean differ); and our estimate
(Hannan-Rissanen + Gauss-Newton on the conditional sum of squares) must land
within a fraction of a standard error of statsmodels' exact maximum
likelihood estimate, which is the benchmark an ARIMA user would reach for.

Each case simulates one series with a fixed seed (numpy's PCG64), rounds it
to 6 significant digits so that the file holds exactly the values statsmodels
saw, and fits statsmodels.tsa.arima.model.ARIMA(order=(p, d, q)).fit() (the
default: state-space MLE, stationarity and invertibility enforced). The
trend is 'c' (a mean) for d = 0, 't' (a drift in the differences) for d = 1
and none for d = 2, which is the same model as preshift's constant c in
w_t = c + sum phi w + sum theta e + e_t, with c = mean * (1 - sum phi).

File format: whitespace-separated tokens, '#' starts a comment to the end of
the line. Sections in this order, each a keyword, its count, then values:

    order 3 <p> <d> <q>
    coef <1+p+q>       c, phi_1..phi_p, theta_1..theta_q (preshift's signs)
    mean 2             the mean of the differenced series (statsmodels' const
                       or drift; 0 for d = 2) and its standard error (0 if none)
    sigma2 1           innovation variance
    bse <p+q>          standard errors of phi and theta
    series <n>         y_0 .. y_{n-1}
    predict <n+1>      statsmodels' one-step prediction of y_t made at t-1,
                       t = 0 .. n (the last is the forecast past the end)

Run with Debian's /usr/bin/python3 (it has statsmodels):
/usr/bin/python3 tests/gen_arima_golden.py [--out DIR].
"""

import argparse
import os
import warnings

import numpy as np
from statsmodels.tsa.arima.model import ARIMA

# name, (p, d, q), phi, theta, mean of the differenced series, sigma, n, seed
CASES = [
    ("ar2", (2, 0, 0), [0.5, -0.3], [], 10.0, 1.0, 600, 11),
    ("arma11", (1, 0, 1), [0.6], [0.3], 5.0, 2.0, 800, 12),
    ("arma21", (2, 0, 1), [0.75, -0.25], [-0.4], -3.0, 0.5, 1000, 13),
    ("ma2", (0, 0, 2), [], [0.5, 0.25], 100.0, 1.0, 600, 14),
    ("arima111", (1, 1, 1), [0.5], [0.4], 0.1, 1.0, 800, 15),
    ("arima021", (0, 2, 1), [], [-0.5], 0.0, 0.3, 500, 16),
]


def simulate(order, phi, theta, mean, sigma, n, seed):
    p, d, q = order
    rng = np.random.Generator(np.random.PCG64(seed))
    burn = 500
    e = rng.normal(0.0, sigma, n + burn)
    c = mean * (1.0 - sum(phi))
    w = np.full(n + burn, mean)
    for t in range(n + burn):
        v = c + e[t]
        for i in range(p):
            v += phi[i] * (w[t - 1 - i] if t - 1 - i >= 0 else mean)
        for j in range(q):
            v += theta[j] * (e[t - 1 - j] if t - 1 - j >= 0 else 0.0)
        w[t] = v
    w = w[burn:]
    y = w
    for _ in range(d):
        y = np.cumsum(np.r_[100.0, y])[:n]
    return np.array([float("%.6g" % v) for v in y])


def fit(order, y):
    p, d, q = order
    trend = {0: "c", 1: "t", 2: "n"}[d]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = ARIMA(y, order=order, trend=trend).fit()
    names = list(res.model.param_names)
    params = dict(zip(names, res.params))
    bse = dict(zip(names, res.bse))
    phi = [params["ar.L%d" % (i + 1)] for i in range(p)]
    theta = [params["ma.L%d" % (j + 1)] for j in range(q)]
    mean = params.get("const", params.get("x1", 0.0))
    mean_se = bse.get("const", bse.get("x1", 0.0))
    c = mean * (1.0 - sum(phi))
    se = [bse["ar.L%d" % (i + 1)] for i in range(p)] + [bse["ma.L%d" % (j + 1)] for j in range(q)]
    pred = res.predict(start=0, end=len(y))
    return c, phi, theta, (mean, mean_se), params["sigma2"], se, np.asarray(pred)


def write(path, name, order, truth, c, phi, theta, mean, sigma2, se, y, pred):
    p, d, q = order
    with open(path, "w") as f:
        f.write("# %s: ARIMA%s simulated with phi=%s theta=%s mean=%g sigma=%g\n" % (
            name, str(order), truth[0], truth[1], truth[2], truth[3]))
        f.write("# statsmodels ARIMA(...).fit() (state-space MLE); see gen_arima_golden.py\n")
        f.write("order 3 %d %d %d\n" % (p, d, q))
        f.write("coef %d %s\n" % (1 + p + q, " ".join("%.17g" % v for v in [c] + phi + theta)))
        f.write("mean 2 %.17g %.17g\n" % mean)
        f.write("sigma2 1 %.17g\n" % sigma2)
        f.write("bse %d %s\n" % (p + q, " ".join("%.17g" % v for v in se)))
        f.write("series %d\n" % len(y))
        for v in y:
            f.write("%.6g\n" % v)
        f.write("predict %d\n" % len(pred))
        for v in pred:
            f.write("%.12g\n" % v)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "golden"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for name, order, phi, theta, mean, sigma, n, seed in CASES:
        y = simulate(order, phi, theta, mean, sigma, n, seed)
        c, ephi, etheta, emean, sigma2, se, pred = fit(order, y)
        path = os.path.join(args.out, "arima_%s.txt" % name)
        write(path, name, order, (phi, theta, mean, sigma), c, ephi, etheta, emean, sigma2,
              se, y, pred)
        print("%s: phi=%s theta=%s mean=%.4g (se %.3g) sigma2=%.4g -> %s" % (
            name, np.round(ephi, 4), np.round(etheta, 4), emean[0], emean[1], sigma2, path))


if __name__ == "__main__":
    main()
