"""The one registry of metrics: every figure a trial can report, declared once.

A metric is a field of :class:`Metrics` whose metadata says its direction (when it can be an
objective), whether it is known before training, its unit and how it is shown. Config validation,
objective directions, reports, MLflow, export and the samplers read :data:`REGISTRY`; code that
produces or reads a figure uses the field (``metrics.accuracy``), never its name as text. Adding a
metric is one field here.

A trial stores each metric once, as a user attribute of the same name (what Optuna's dashboard
shows). Studies written before this registry also hold a ``metrics`` dict with the same values;
:meth:`Metrics.from_attrs` reads both.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from typing import Any, Literal

Direction = Literal["maximize", "minimize"]
Value = float | int | bool | list[float] | list[int]
# How a value is shown in tables and progress lines.
Style = Literal["fraction", "ms", "millions", "seconds", "plain"]


@dataclass(frozen=True)
class Metric:
    name: str
    direction: Direction | None  # None: recorded, never an objective
    cheap: bool  # known before training (counted, measured or looked up without training)
    unit: str  # "" for a pure number or a fraction
    style: Style
    help: str
    column: bool  # a column of the front table (`search front`), in field order

    def show(self, value: Value) -> str:
        """The value as tables and the progress line print it."""
        if isinstance(value, list):
            return "/".join(_show(self.style, v) for v in value)
        return _show(self.style, value)


def _show(style: Style, value: float | int | bool) -> str:
    if isinstance(value, bool) or style == "plain":
        return str(value)
    if style == "millions":
        return f"{value / 1e6:.3f} M"
    if style in ("ms", "seconds"):
        return f"{value:.3f}"
    return f"{value:.4f}"


def _metric(direction: Direction | None, cheap: bool, unit: str, style: Style, help: str,
            column: bool = False) -> Any:
    return field(default=None, metadata=dict(direction=direction, cheap=cheap, unit=unit, style=style,
                                             help=help, column=column))


@dataclass(frozen=True)
class Metrics:
    """One trial's figures; ``None``: not measured (a table has no MACs, a network without exits
    no exit rates). The front table's columns come first, in the order it prints them."""

    accuracy: float | None = _metric(
        "maximize", False, "", "fraction", "validation accuracy (with early exits: the dynamic network's)", True)
    accuracy_full: float | None = _metric(
        None, False, "", "fraction", "validation accuracy at full depth (networks with early exits)", True)
    test_accuracy: float | None = _metric(None, False, "", "fraction", "test accuracy, reported only", True)
    latency_ms: float | None = _metric(
        "minimize", True, "ms", "ms", "median batch-1 latency on the evaluating device", True)
    macs: int | None = _metric("minimize", True, "MACs", "millions", "multiply-adds for one input", True)
    params: int | None = _metric("minimize", True, "", "millions", "parameters", True)
    expected_macs: float | None = _metric(
        "minimize", False, "MACs", "millions", "MACs weighted by where samples leave an early-exit network "
                                               "(= macs without exits)", True)
    expected_latency_ms: float | None = _metric(
        "minimize", False, "ms", "ms", "latency of the dynamic early-exit network (= latency_ms without exits)", True)
    exit_rates: list[float] | None = _metric(
        None, False, "", "fraction", "share of validation samples leaving at each head, the main head last", True)
    test_accuracy_full: float | None = _metric(None, False, "", "fraction", "test accuracy at full depth")
    train_seconds: float | None = _metric(None, False, "s", "seconds", "wall time of training")
    latency_threads: int | None = _metric(None, True, "", "plain", "CPU threads of the latency measurement")
    latency_runs: int | None = _metric(None, True, "", "plain", "forwards timed for the latency median")
    latency_realtime: bool | None = _metric(None, True, "", "plain", "timed at real-time priority")
    exit_threshold: float | None = _metric(None, False, "", "fraction", "softmax confidence at which an exit answers")
    exit_tolerance: float | None = _metric(None, False, "", "fraction", "accuracy the exits may cost (validation)")
    exit_macs: list[int] | None = _metric(None, True, "MACs", "millions", "MACs of a sample leaving at each head")
    seeds: int | None = _metric(None, False, "", "plain", "training seeds a table row averages")

    def values(self) -> dict[str, Value]:
        """The measured figures by name (what a trial stores, one user attribute each)."""
        return {f.name: v for f in fields(self) if (v := getattr(self, f.name)) is not None}

    def value(self, name: str) -> float:
        """One figure as a number (an objective's value); KeyError when not measured."""
        v = getattr(self, name, None) if name in REGISTRY else None
        if v is None or isinstance(v, list):
            raise KeyError(f"metric {name!r} was not measured")
        return float(v)

    def merged(self, other: Metrics) -> Metrics:
        """These figures with ``other``'s measured ones on top."""
        return dataclasses.replace(self, **other.values())  # type: ignore[arg-type]

    def cheap(self) -> Metrics:
        """Only the figures known before training."""
        return Metrics(**{k: v for k, v in self.values().items() if REGISTRY[k].cheap})  # type: ignore[arg-type]

    @staticmethod
    def from_attrs(attrs: dict[str, Any]) -> Metrics:
        """A trial's figures from its user attributes (one per metric; older studies' ``metrics``
        dict too)."""
        stored = {**attrs.get(LEGACY_ATTR, {}), **attrs}
        return Metrics(**{k: stored[k] for k in REGISTRY if k in stored})


REGISTRY: dict[str, Metric] = {f.name: Metric(f.name, **f.metadata) for f in fields(Metrics)}
OBJECTIVES: dict[str, Direction] = {m.name: m.direction for m in REGISTRY.values() if m.direction}
COLUMNS: tuple[str, ...] = tuple(m.name for m in REGISTRY.values() if m.column)
DEFAULT_OBJECTIVES = ("accuracy", "latency_ms", "macs")
# What each evaluation reports (objectives are chosen among these).
TRAINED = ("accuracy", "test_accuracy", "latency_ms", "macs", "params", "train_seconds", "expected_macs",
           "expected_latency_ms")
TABLE = ("accuracy", "latency_ms", "params", "train_seconds")
LEGACY_ATTR = "metrics"  # the dict every trial also stored before the registry


def _check() -> None:
    for name in (*DEFAULT_OBJECTIVES, *TRAINED, *TABLE):
        assert name in REGISTRY, f"{name} is not a metric"


_check()
