"""One trial's evaluation: genotype text in, metrics out. Runs anywhere (this process, a Ray worker)."""
from __future__ import annotations

import functools
import time
from dataclasses import dataclass

import torch

from spaces import build, parse

from . import quiet
from .cost import count_macs, count_params
from .data import Dataset, load_dataset
from .latency import measure_latency
from .training import Recipe, accuracy, train


@dataclass(frozen=True)
class TrialSpec:
    number: int
    genotype: str
    dataset: str
    recipe: Recipe
    device: str = "cpu"


@functools.lru_cache(maxsize=4)
def cached_dataset(name: str) -> Dataset:
    return load_dataset(name)


def cheap_metrics(model: torch.nn.Module, input_shape: tuple[int, int, int], device: str) -> dict:
    """What is known before training: exact size and cost, and measured latency."""
    lat = measure_latency(model, input_shape, device)
    return {"params": count_params(model), "macs": count_macs(model, input_shape),
            "latency_ms": lat.median_ms, "latency_threads": lat.threads, "latency_runs": lat.runs}


def evaluate(spec: TrialSpec) -> dict:
    """Build, cost, train and validate one genotype; raises on failure (the caller records why)."""
    data = cached_dataset(spec.dataset)
    torch.manual_seed(spec.recipe.seed)
    model = build(parse(spec.genotype), data.input_shape, data.num_classes)
    with quiet.measuring():
        metrics = cheap_metrics(model, data.input_shape, spec.device)
    with quiet.training():
        t0 = time.perf_counter()
        train(model, data.train, spec.recipe, spec.device)
        metrics["train_seconds"] = time.perf_counter() - t0
        metrics["accuracy"] = accuracy(model, data.val, spec.device)
        metrics["test_accuracy"] = accuracy(model, data.test, spec.device)
    return metrics
