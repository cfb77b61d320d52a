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
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from typing import Any, Literal

Direction = Literal["maximize", "minimize"]
Value = float | int | bool | str | list[float] | list[int]
# How a value is shown in tables and progress lines.
Style = Literal["fraction", "ms", "millions", "seconds", "plain", "kb", "mb", "rate"]


@dataclass(frozen=True)
class Metric:
    name: str
    direction: Direction | None  # None: recorded, never an objective
    cheap: bool  # known before training (counted, measured or looked up without training)
    unit: str  # "" for a pure number or a fraction
    style: Style
    help: str
    column: bool  # a column of the front table (`search front`), in field order
    # a metric measured after training that never exceeds this cheap one (what a trial rejected
    # before training is told for it: the full-depth cost of a network without exits)
    bound: str | None = None
    history: bool = False  # a list with one value per epoch: MLflow shows it as the metric's history

    @property
    def budget(self) -> str | None:
        """The budget's key (``max_latency_ms``, ``min_throughput``): costs known before training
        only, so a candidate over budget is never trained."""
        if not self.cheap or self.direction is None:
            return None
        return ("max_" if self.direction == "minimize" else "min_") + self.name

    def show(self, value: Value) -> str:
        """The value as tables and the progress line print it."""
        if isinstance(value, list):
            return "/".join(_show(self.style, v) for v in value)
        return _show(self.style, value)

    def show_with_unit(self, value: Value) -> str:
        return self.show(value) + (f" {self.unit}" if self.unit else "")


def _show(style: Style, value: float | int | bool | str) -> str:
    if isinstance(value, (bool, str)) or style == "plain":
        return str(value)
    if style == "kb":
        return f"{value:.1f}"
    if style == "mb":
        return f"{value:.2f}"
    if style == "rate":
        return f"{value:.0f}"
    if style == "millions":
        return f"{value / 1e6:.3f} M"
    if style in ("ms", "seconds"):
        return f"{value:.3f}"
    return f"{value:.4f}"


def _metric(direction: Direction | None, cheap: bool, unit: str, style: Style, help: str,
            column: bool = False, bound: str | None = None, history: bool = False) -> Any:
    return field(default=None, metadata=dict(direction=direction, cheap=cheap, unit=unit, style=style,
                                             help=help, column=column, bound=bound, history=history))


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
        "minimize", True, "ms", "ms", "median batch-1 latency on the evaluating device, in the runtime the model "
                                      "ships in (latency_runtime)", True)
    macs: int | None = _metric("minimize", True, "MACs", "millions", "multiply-adds for one input", True)
    params: int | None = _metric("minimize", True, "", "millions", "parameters", True)
    peak_memory_mb: float | None = _metric(
        "minimize", True, "MB", "mb", "weights plus the most activation memory alive at once in one batch-1 "
                                      "forward (int8 runtimes: one byte an element)", True)
    model_kb: float | None = _metric("minimize", True, "KB", "kb", "size of the file that ships (weights.pt, "
                                                                   "model.onnx or model_int8.onnx)", True)
    throughput: float | None = _metric(
        "maximize", True, "images/s", "rate", "images a second at batch --throughput-batch in the runtime", True)
    expected_macs: float | None = _metric(
        "minimize", False, "MACs", "millions", "MACs weighted by where samples leave an early-exit network "
                                               "(= macs without exits)", True, bound="macs")
    expected_latency_ms: float | None = _metric(
        "minimize", False, "ms", "ms", "latency of the dynamic early-exit network (= latency_ms without exits)", True,
        bound="latency_ms")
    exit_rates: list[float] | None = _metric(
        None, False, "", "fraction", "share of validation samples leaving at each head, the main head last", True)
    test_accuracy_full: float | None = _metric(None, False, "", "fraction", "test accuracy at full depth")
    accuracy_fp32: float | None = _metric(
        None, False, "", "fraction", "validation accuracy of the float model (int8 runtimes: accuracy is the "
                                     "quantized model's)")
    test_accuracy_fp32: float | None = _metric(None, False, "", "fraction", "test accuracy of the float model")
    latency_runtime: str | None = _metric(None, True, "", "plain", "the runtime latency_ms was timed in")
    latency_raw_ms: float | None = _metric(None, True, "ms", "ms", "median batch-1 latency as timed, before the drift "
                                                                   "correction (latency_ms: the ratio to the reference "
                                                                   "x the reference's anchor)")
    latency_reference_ms: float | None = _metric(None, True, "ms", "ms", "the reference network's median, timed "
                                                                         "interleaved with this one")
    latency_anchor_ms: float | None = _metric(None, True, "ms", "ms", "the reference network's steady latency on the "
                                                                      "node (what latency_ms is anchored to)")
    train_seconds: float | None = _metric(None, False, "s", "seconds", "wall time of training, the validation after "
                                                                       "each epoch included")
    epoch_accuracy: list[float] | None = _metric(
        None, False, "", "fraction", "validation accuracy after each epoch (MLflow: the history of epoch_accuracy)",
        history=True)
    stopped_epoch: int | None = _metric(None, False, "", "plain", "the rung (epochs trained) at which early "
                                                                  "stopping stopped the trial (PRUNED)")
    train_precision: str | None = _metric(None, False, "", "plain", "the arithmetic training ran in: fp32, or bf16 "
                                                                    "(CUDA autocast)")
    gpu_memory_mb: float | None = _metric(None, False, "MB", "mb", "peak GPU memory allocated while training (the "
                                                                   "worker's data set copy included)")
    latency_predicted_ms: float | None = _metric(
        None, True, "ms", "ms", "the latency the hybrid sampler's model predicted for the candidate before it was "
                                "timed (--predict-latency)")
    latency_prediction_error: float | None = _metric(
        None, True, "", "fraction", "predicted / measured latency - 1 (--predict-latency)", True)
    latency_node: str | None = _metric(None, True, "", "plain", "the machine latency_ms was timed on (a Ray "
                                                                "node: host/node id; --latency-on: the device's)")
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
        if v is None or isinstance(v, (list, str)):
            raise KeyError(f"metric {name!r} was not measured")
        return float(v)

    def rejected_value(self, name: str) -> float:
        """An objective's value for a candidate rejected before training (its cheap figures only):
        measured ones as they are; an unmeasured maximised one (accuracy) 0; an unmeasured cost its
        bound (expected_macs: macs)."""
        metric = REGISTRY[name]
        if getattr(self, name) is not None:
            return self.value(name)
        if metric.direction == "maximize":
            return 0.0
        assert metric.bound is not None, f"{name} has no bound before training"
        return self.value(metric.bound)

    def merged(self, other: Metrics) -> Metrics:
        """These figures with ``other``'s measured ones on top."""
        return dataclasses.replace(self, **other.values())  # type: ignore[arg-type]

    def cheap(self) -> Metrics:
        """Only the figures known before training."""
        return Metrics(**{k: v for k, v in self.values().items() if REGISTRY[k].cheap})  # type: ignore[arg-type]

    def compared(self) -> Metrics:
        """Only the figures a sampler compares (objectives and budgets), not how they were taken."""
        return Metrics(**{k: v for k, v in self.values().items() if REGISTRY[k].direction})  # type: ignore[arg-type]

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
           "expected_latency_ms", "peak_memory_mb", "model_kb", "throughput")
TABLE = ("accuracy", "latency_ms", "params", "train_seconds")
# the header of a device's latency table (evaluators.device_table, --latency-table)
DEVICE_TABLE = ("arch", "latency_ms")
# what an export's report gives for each runtime (search.export.costs)
PER_RUNTIME = ("latency_ms", "throughput", "model_kb", "peak_memory_mb", "accuracy")


@dataclass(frozen=True)
class Prediction:
    """A cost a model predicts before it is measured (``--predict-latency``): where the
    prediction and its error are recorded."""
    metric: str
    predicted: str
    error: str

    def error_of(self, predicted: float, measured: float) -> Metrics:
        return Metrics(**{self.error: predicted / measured - 1})  # type: ignore[arg-type]


LATENCY_PREDICTION = Prediction("latency_ms", "latency_predicted_ms", "latency_prediction_error")
LEGACY_ATTR = "metrics"  # the dict every trial also stored before the registry


@dataclass(frozen=True)
class Extras:
    """The costs beyond counts and latency that a measurement takes: a trial takes them all; a
    sampler's screen only those an objective or a budget reads (together ~15-25 ms a candidate
    here, and the hybrid sampler screens 16 candidates a trial)."""
    peak_memory: bool = True
    model_size: bool = True
    throughput: bool = True

    @staticmethod
    def read_by(names: Iterable[str]) -> Extras:
        wanted = set(names)
        return Extras("peak_memory_mb" in wanted, "model_kb" in wanted, "throughput" in wanted)


ALL_EXTRAS = Extras()


# budget key (max_latency_ms, min_throughput) -> its metric: one per cost known before training
BUDGETS: dict[str, str] = {m.budget: m.name for m in REGISTRY.values() if m.budget}


def _check() -> None:
    p = LATENCY_PREDICTION
    for name in (*DEFAULT_OBJECTIVES, *TRAINED, *TABLE, *PER_RUNTIME, p.metric, p.predicted, p.error):
        assert name in REGISTRY, f"{name} is not a metric"
    for m in REGISTRY.values():
        assert m.bound is None or REGISTRY[m.bound].cheap, f"{m.name}'s bound must be known before training"
        assert m.cheap or m.direction != "minimize" or m.bound, f"{m.name}: a cost after training needs a bound"


_check()
