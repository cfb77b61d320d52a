"""Evaluators: data sets, training and accuracy, MACs and parameters, latency, whole trials, and
the one registry of metrics."""
from .cost import count_macs, count_params
from .data import DATASETS, DataError, Dataset, load_dataset, prepare
from .evaluation import Evaluation, evaluation_for
from .latency import Latency, measure_latency
from .metrics import REGISTRY, Metric, Metrics
from .training import Recipe, TrainingError, accuracy, train
from .trial import TrialResult, TrialSpec, evaluate

__all__ = ["DATASETS", "REGISTRY", "DataError", "Dataset", "Evaluation", "Latency", "Metric", "Metrics", "Recipe",
           "TrainingError", "TrialResult", "TrialSpec", "accuracy", "count_macs", "count_params", "evaluate",
           "evaluation_for", "load_dataset", "measure_latency", "prepare", "train"]
