"""Budgets: a bound on a cost known before training (``--max-latency-ms 5``, ``--min-throughput
200``). A candidate over one is never trained; the keys come from the metric registry."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

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

    def excess(self, metrics: Metrics) -> float:
        """How far over the budget, as a share of it: <= 0 within (Optuna's constraint value)."""
        value = metrics.value(self.metric)
        over = value - self.limit if self.at_most else self.limit - value
        return over / self.limit

    def describe(self, metrics: Metrics) -> str:
        m = REGISTRY[self.metric]
        unit = f" {m.unit}" if m.unit else ""
        return (f"{self.metric} {m.show(metrics.value(self.metric))}{unit} over {self.flag} {self.limit:g}"
                if self.at_most else
                f"{self.metric} {m.show(metrics.value(self.metric))}{unit} under {self.flag} {self.limit:g}")


def over_budget(metrics: Metrics, budgets: Iterable[Budget]) -> str | None:
    """Why ``metrics`` break a budget (each broken one, in a few words), or None."""
    broken = [b.describe(metrics) for b in budgets if b.excess(metrics) > 0]
    return "; ".join(broken) or None


def budget_metrics(budgets: Iterable[Budget]) -> set[str]:
    return {b.metric for b in budgets}
