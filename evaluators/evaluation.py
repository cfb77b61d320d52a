"""How a space's trials are evaluated: a space names its evaluator kind, this module says what
that kind offers on one data set."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

from . import data, tabular

# kind -> data sets it accepts (the first is the default), and the metrics its trials report
DATASETS = {"train": tuple(data.DATASETS), "tabular": tabular.DATASETS}
METRICS = {"train": ("accuracy", "test_accuracy", "latency_ms", "macs", "params", "train_seconds",
                     "expected_macs", "expected_latency_ms"),
           "tabular": tabular.METRICS}


def dataset_names(kind: str) -> str:
    return data.dataset_names() if kind == "train" else ", ".join(DATASETS[kind])


def check_dataset(kind: str, name: str) -> None:
    """Raises DataError naming what ``kind`` accepts when it does not accept ``name``."""
    if kind == "train":
        data.check_name(name)
    elif name not in DATASETS[kind]:
        raise data.DataError(f"unknown data set {name!r}; available: {dataset_names(kind)}")


@dataclass(frozen=True)
class Evaluation:
    kind: str
    description: str  # the data, in a few words
    input_shape: tuple[int, int, int] | None  # what the space builds for; None for a table
    metrics: tuple[str, ...]  # what a trial reports; objectives are chosen among them
    screen: Callable[[str], dict]  # genotype text -> metrics known before training (free)
    lookup: Callable[[str], dict] | None = None  # evaluates in this process; None: an executor trains


def evaluation_for(kind: str, dataset: str, data_dir: str = "", recipe=None, device: str = "cpu") -> Evaluation:
    """Reads the data (a trained kind) or the table; raises DataError when it cannot."""
    check_dataset(kind, dataset)
    if kind == "tabular":
        cells = len(tabular.load_table(dataset))
        return Evaluation(kind, f"{dataset} (NAS-Bench-201 table, {cells:,} cells)", None, METRICS[kind],
                          functools.partial(tabular.screen, dataset), functools.partial(tabular.lookup, dataset))
    from .training import Recipe
    from .trial import screen, trial_data

    recipe = recipe or Recipe()
    d = trial_data(dataset, data_dir, recipe)
    return Evaluation(kind, f"{dataset} {'x'.join(map(str, d.input_shape))} ({len(d.train[0])} training images)",
                      d.input_shape, METRICS[kind],
                      functools.partial(screen, dataset=dataset, data_dir=data_dir, recipe=recipe, device=device))
