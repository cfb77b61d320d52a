"""Budgets: a bound on a cost known before training (``--max-latency-ms 5``, ``--min-throughput
200``). A candidate over one is never trained; the keys come from the metric registry."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from .metrics import BUDGETS, REGISTRY, Metrics


@dataclass(frozen=True)
class Budget:
    key: str  # a key of metrics.BUDGETS: max_<metric> or min_<metric>
    limit: float

    def __post_init__(self) -> None:
        if self.key not in BUDGETS:
            raise ValueError(f"unknown budget {self.key!r}; known: {', '.join(BUDGETS)}")

    @property
    def metric(self) -> str:
        return BUDGETS[self.key]

    @property
    def flag(self) -> str:
        return "--" + self.key.replace("_", "-")

    @property
    def at_most(self) -> bool:
        return self.key.startswith("max_")

    def allows(self, value: float | np.ndarray) -> bool | np.ndarray:
        """Within the budget (``excess`` <= 0), for one value or an array of them."""
        return value <= self.limit if self.at_most else value >= self.limit

    def excess(self, metrics: Metrics) -> float:
        """How far over the budget, as a share of it: <= 0 within (Optuna's constraint value)."""
        value = metrics.value(self.metric)
        over = value - self.limit if self.at_most else self.limit - value
        return over / self.limit

    def describe(self, metrics: Metrics) -> str:
        shown = REGISTRY[self.metric].show_with_unit(metrics.value(self.metric))
        return f"{self.metric} {shown} {'over' if self.at_most else 'under'} {self.flag} {self.limit:g}"


def over_budget(metrics: Metrics, budgets: Iterable[Budget]) -> str | None:
    """Why ``metrics`` break a budget (each broken one, in a few words), or None."""
    broken = [b.describe(metrics) for b in budgets if b.excess(metrics) > 0]
    return "; ".join(broken) or None


class Closest:
    """The figure nearest to each budget among the candidates seen (the smallest cost, the
    largest rate): what a search that finds nothing within them reports."""

    def __init__(self, budgets: tuple[Budget, ...]) -> None:
        self.budgets = budgets
        self.best: dict[str, float] = {}  # budget key -> the best value seen

    def see(self, metrics: Metrics) -> None:
        for b in self.budgets:
            v, seen = metrics.value(b.metric), self.best.get(b.key)
            self.best[b.key] = v if seen is None else min(seen, v) if b.at_most else max(seen, v)

    def __str__(self) -> str:
        def found(b: Budget) -> str:
            seen = self.best.get(b.key)
            return "none (no candidate could be built)" if seen is None else REGISTRY[b.metric].show_with_unit(seen)

        return "; ".join(f"{'smallest' if b.at_most else 'largest'} {b.metric} found {found(b)} ({b.flag} {b.limit:g})"
                         for b in self.budgets)
