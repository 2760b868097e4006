"""Paired bootstrap of the ROC AUC difference: weighted matrix form vs resampling with scikit-learn.

The shadow evaluation's statistical guard resamples the shadow rows ``n_resamples`` times
and scores both models on each resample. Times, in the same run and on the same data:

* ``baseline``: the textbook loop: draw row indices, ``roc_auc_score`` for each model, B times;
* ``driftgate``: :func:`driftgate.promotion.policy.paired_bootstrap` (multinomial resample counts as row
  weights, one weighted Mann-Whitney AUC per resample, vectorised over resamples).

Both give the same interval up to Monte-Carlo noise (checked below). Usage::

    python benchmarks/promotion_bench.py                 # 4,000 rows x 1,000 resamples
    python benchmarks/promotion_bench.py --rows 1000 --resamples 200   # quick
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from driftgate.promotion.policy import paired_bootstrap  # noqa: E402


def _data(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    out = []
    for skill in (0.8, 1.0):
        z = skill * (2 * y - 1) + rng.normal(0, 1, n)
        p = 1 / (1 + np.exp(-z))
        out.append(((p >= 0.5).astype(int), p))
    return y, out[0], out[1]


def baseline(y, a, b, *, n_resamples: int, confidence: float, seed: int):
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    n = len(y)
    diffs = []
    for _ in range(n_resamples):
        idx = rng.integers(0, n, n)
        diffs.append(roc_auc_score(y[idx], b[1][idx]) - roc_auc_score(y[idx], a[1][idx]))
    alpha = 1 - confidence
    return np.quantile(diffs, [alpha / 2, 1 - alpha / 2])


def _time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    y, a, b = _data(args.rows)
    kw = dict(n_resamples=args.resamples, confidence=0.95, seed=1)
    ours = paired_bootstrap(y, a, b, metric="roc_auc", **kw)
    low, high = baseline(y, a, b, **kw)
    width = high - low
    assert abs(ours.low - low) < 0.25 * width and abs(ours.high - high) < 0.25 * width, (ours, low, high)
    t_base = _time(lambda: baseline(y, a, b, **kw), args.repeats)
    t_ours = _time(lambda: paired_bootstrap(y, a, b, metric="roc_auc", **kw), args.repeats)
    print(f"rows={args.rows} resamples={args.resamples} (median of {args.repeats})")
    print(f"  baseline  sklearn loop     {t_base * 1000:9.1f} ms   CI [{low:+.4f}, {high:+.4f}]")
    print(f"  driftgate paired_bootstrap {t_ours * 1000:9.1f} ms   CI [{ours.low:+.4f}, {ours.high:+.4f}]")
    print(f"  speed-up: {t_base / t_ours:.1f}x")


if __name__ == "__main__":
    main()
