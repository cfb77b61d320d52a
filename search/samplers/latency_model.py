"""A latency model for when timing is scarce (``--predict-latency``): a device times one model at
a time, or a device's table is read only for the cells trained so far.

Latency, in ms (not its log: a network's latency is a sum over the layers it runs), is fitted by
ridge regression on a candidate's cost features (``Space.cost_features``: counts of the kinds of
layer, or of each NAS-Bench-201 operation) and, for a trained space, its MACs and parameters:
in effect a per-layer lookup table fitted by least squares. The ridge's strength is chosen by the
leave-one-out error, in closed form. Measured (benchmarks/latency_predictor.py, docs/sampler.md):
on the four NAS-Bench-201 device tables, 25 measured cells rank all 15,625 with Spearman
0.936-0.999; per-position one-hot features or the log of latency did worse below 50 measurements.
"""
from __future__ import annotations

import numpy as np

MIN_MEASURED = 5  # fewer measurements than this: the screen's own figure stands in
ALPHAS = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)


class LinearLatency:
    """Ridge regression of latency on features (standardised; the intercept not penalised)."""

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        x, y = np.asarray(x, float), np.asarray(y, float)
        self.mean, self.scale = x.mean(0), x.std(0)
        self.scale[self.scale == 0] = 1.0  # a feature that never varied says nothing
        xs = self._design(x)
        penalty = np.eye(xs.shape[1])
        penalty[0, 0] = 0.0
        best = np.inf
        for alpha in ALPHAS:
            solve = np.linalg.solve(xs.T @ xs + alpha * penalty, xs.T)
            w = solve @ y
            hat = np.einsum("ij,ji->i", xs, solve)  # the hat matrix's diagonal
            loo = float(np.mean(((y - xs @ w) / np.maximum(1 - hat, 1e-6)) ** 2))
            if loo < best:
                best, self.alpha, self.weights = loo, alpha, w
        self.floor = float(y.min()) / 2  # a prediction is a latency: never at or below 0

    def _design(self, x: np.ndarray) -> np.ndarray:
        return np.hstack([np.ones((len(x), 1)), (np.asarray(x, float) - self.mean) / self.scale])

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.maximum(self._design(x) @ self.weights, self.floor)
