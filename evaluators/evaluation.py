"""How a space's candidates are evaluated: the ``Evaluation`` protocol and its two kinds, trained
on a data set or looked up in a published table. A space says which kind (``Space.evaluated``);
this module says what that kind offers on one data set."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from hwnas.spaces import Evaluated

from . import data, metrics, tabular
from .device_table import device_latencies
from .metrics import ALL_EXTRAS, Extras, Metrics
from .runtimes import DEFAULT_RUNTIME, THROUGHPUT_BATCH
from .training import Recipe
from .trial import TrialResult, TrialSpec, evaluate, screen, trial_data

# kind -> the data sets it accepts (the first is the default), and the metrics its trials report
DATASETS: dict[Evaluated, tuple[str, ...]] = {Evaluated.TRAINED: tuple(data.DATASETS),
                                               Evaluated.TABLE: tabular.DATASETS}
METRICS: dict[Evaluated, tuple[str, ...]] = {Evaluated.TRAINED: metrics.TRAINED, Evaluated.TABLE: metrics.TABLE}


def dataset_names(kind: Evaluated) -> str:
    return data.dataset_names() if kind is Evaluated.TRAINED else ", ".join(DATASETS[kind])


def check_dataset(kind: Evaluated, name: str) -> None:
    """Raises DataError naming what ``kind`` accepts when it does not accept ``name``."""
    if kind is Evaluated.TRAINED:
        data.check_name(name)
    elif name not in DATASETS[kind]:
        raise data.DataError(f"unknown data set {name!r}; available: {dataset_names(kind)}")


class Evaluation(Protocol):
    """One way of evaluating candidates, on one data set."""

    @property
    def description(self) -> str:
        """The data, in a few words."""

    @property
    def input_shape(self) -> tuple[int, int, int] | None:
        """What the space builds for; None for a table."""

    @property
    def metrics(self) -> tuple[str, ...]:
        """What a trial reports; objectives are chosen among them."""

    @property
    def local(self) -> bool:
        """Cheap enough to evaluate in the asking process (no workers are started for it)."""

    def screen(self, genotypes: Sequence[str]) -> list[Metrics | None]:
        """The figures known before training (exact size and cost, a short timing, or a lookup) of
        each genotype; None for one that makes no network."""

    @property
    def evaluate(self) -> Callable[[TrialSpec], TrialResult]:
        """Evaluates one trial anywhere (this process, a Ray worker): a module-level function, so
        it travels by reference."""


@dataclass(frozen=True)
class Trained:
    description: str
    input_shape: tuple[int, int, int]
    dataset: str
    data_dir: str
    recipe: Recipe
    device: str
    runtime: str = DEFAULT_RUNTIME
    throughput_batch: int = THROUGHPUT_BATCH
    screened: Extras = Extras()  # the costs beyond counts and latency a screen takes (objectives', budgets')
    metrics: tuple[str, ...] = metrics.TRAINED
    local: bool = False
    # trials are timed elsewhere (--latency-on): a screen's latency times this reads as there
    latency_scale: float = 1.0

    def screen(self, genotypes: Sequence[str]) -> list[Metrics | None]:
        figures = screen(genotypes, self.dataset, self.data_dir, self.recipe, self.device, self.runtime,
                         self.throughput_batch, self.screened)
        if self.latency_scale == 1.0:
            return figures
        return [m if m is None else
                replace(m, latency_ms=m.latency_ms * self.latency_scale if m.latency_ms is not None else None,
                        throughput=m.throughput / self.latency_scale if m.throughput is not None else None)
                for m in figures]

    @property
    def evaluate(self) -> Callable[[TrialSpec], TrialResult]:
        return evaluate


@dataclass(frozen=True)
class Table:
    description: str
    dataset: str
    input_shape: None = None
    latency_table: str = ""  # a device's latency table read instead of the benchmark's own
    metrics: tuple[str, ...] = metrics.TABLE
    local: bool = True
    # --predict-latency: the device is scarce, its table is read for the trials only; a screen
    # reads the benchmark's own latency, which a model of the device's replaces (samplers.hybrid)
    predicted: bool = False

    def screen(self, genotypes: Sequence[str]) -> list[Metrics | None]:
        return [tabular.screen(self.dataset, g, "" if self.predicted else self.latency_table) for g in genotypes]

    @property
    def evaluate(self) -> Callable[[TrialSpec], TrialResult]:
        return tabular.evaluate


def evaluation_for(kind: Evaluated, dataset: str, data_dir: str = "", recipe: Recipe | None = None,
                   device: str = "cpu", runtime: str = DEFAULT_RUNTIME,
                   throughput_batch: int = THROUGHPUT_BATCH, screened: Extras = ALL_EXTRAS,
                   latency_table: str = "", predict_latency: bool = False) -> Evaluation:
    """Reads the data (trained) or the table; raises DataError when it cannot. ``screened``: the
    costs beyond counts and latency a sampler's screen takes; ``predict_latency``: a table's
    screen does not read the device's latency table."""
    check_dataset(kind, dataset)
    if kind is Evaluated.TABLE:
        cells = len(tabular.load_table(dataset))
        if latency_table:
            device_latencies(latency_table)  # read (and checked) before any study is touched
            predicted = "; predicted, read for trials only" if predict_latency else ""
            return Table(f"{dataset} (NAS-Bench-201 table, {cells:,} cells; latency of {latency_table}{predicted})",
                         dataset, latency_table=latency_table, predicted=predict_latency)
        return Table(f"{dataset} (NAS-Bench-201 table, {cells:,} cells)", dataset)
    recipe = recipe or Recipe()
    d = trial_data(dataset, data_dir, recipe)
    return Trained(f"{dataset} {'x'.join(map(str, d.input_shape))} ({len(d.train)} training images)",
                   d.input_shape, dataset, data_dir, recipe, device, runtime, throughput_batch, screened)
