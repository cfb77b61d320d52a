"""Evaluators: data sets, training and accuracy, MACs and parameters, latency, whole trials."""
from .cost import count_macs, count_params
from .data import DATASETS, DataError, Dataset, load_dataset, prepare
from .latency import Latency, measure_latency
from .training import Recipe, TrainingError, accuracy, train
from .trial import TrialSpec, evaluate

__all__ = ["DATASETS", "DataError", "Dataset", "Latency", "Recipe", "TrainingError", "TrialSpec", "accuracy",
           "count_macs", "count_params", "evaluate", "load_dataset", "measure_latency", "prepare", "train"]
