"""Samplers by name: Optuna's, and the hybrid sampler (screen on cheap metrics, train the best)."""
from __future__ import annotations

import optuna

from ..errors import UsageError
from .hybrid import HybridSampler, Screen, screen_for

SAMPLERS = ("hybrid", "nsga2", "nsga3", "tpe", "gp", "botorch", "random")
DEFAULT_SAMPLER = "hybrid"  # benchmarks/search_quality.py measures it against the others

__all__ = ["DEFAULT_SAMPLER", "SAMPLERS", "HybridSampler", "Screen", "make_sampler", "screen_for"]


def make_sampler(name: str, seed: int, screen: Screen | None = None) -> optuna.samplers.BaseSampler:
    """``screen`` (what is known of a candidate before training) is needed by ``hybrid`` only."""
    s = optuna.samplers
    if name == "hybrid":
        if screen is None:
            raise UsageError("the hybrid sampler needs a screen of the space (hwnas.search.samplers.screen_for)")
        return HybridSampler(screen, seed=seed)
    if name == "nsga2":
        return s.NSGAIISampler(population_size=20, seed=seed)
    if name == "nsga3":
        return s.NSGAIIISampler(population_size=20, seed=seed)
    if name == "tpe":
        return s.TPESampler(multivariate=True, seed=seed)
    if name == "gp":
        return s.GPSampler(seed=seed)
    if name == "botorch":
        from optuna_integration import BoTorchSampler

        return BoTorchSampler(seed=seed)
    if name == "random":
        return s.RandomSampler(seed=seed)
    raise UsageError(f"unknown sampler {name!r}")
