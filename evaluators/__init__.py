"""Evaluators: data sets, training and accuracy, MACs and parameters, latency, whole trials, and
the one registry of metrics (``metrics``).

Names are imported on first use (PEP 562): reading the metric registry, as `search front` and
argument checks do, does not pay for importing torch."""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_HOMES = {"count_macs": "cost", "count_params": "cost", "DATASETS": "data", "DataError": "data",
          "Dataset": "data", "load_dataset": "data", "prepare": "data", "Evaluation": "evaluation",
          "evaluation_for": "evaluation", "Latency": "latency", "measure_latency": "latency",
          "REGISTRY": "metrics", "Metric": "metrics", "Metrics": "metrics", "Recipe": "training",
          "TrainingError": "training", "accuracy_of": "training", "train": "training",
          "Resume": "trial", "TrialResult": "trial", "TrialSpec": "trial", "evaluate": "trial"}
__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)


if TYPE_CHECKING:
    from .cost import count_macs, count_params
    from .data import DATASETS, DataError, Dataset, load_dataset, prepare
    from .evaluation import Evaluation, evaluation_for
    from .latency import Latency, measure_latency
    from .metrics import REGISTRY, Metric, Metrics
    from .training import Recipe, TrainingError, accuracy_of, train
    from .trial import Resume, TrialResult, TrialSpec, evaluate
