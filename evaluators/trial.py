"""One trial's evaluation: genotype text in, metrics out. Runs anywhere (this process, a Ray worker)."""
from __future__ import annotations

import functools
import io
import time
from dataclasses import dataclass

import torch

from hwnas.spaces import Network, build, parse

from . import quiet
from .cost import count_macs, count_params
from .data import Dataset, crop_flip, load_dataset, prepare
from .early_exit import exit_metrics
from .latency import measure_latency
from .metrics import Metrics
from .training import Recipe, accuracy_of, train


@dataclass(frozen=True)
class TrialSpec:
    number: int
    genotype: str
    dataset: str
    recipe: Recipe
    device: str = "cpu"
    data_dir: str = ""  # where the data set's files are ("" = its default place)
    threads: int = 1  # CPU threads for the latency measurements (0 = all cores); see search.config
    exit_tolerance: float = 0.01  # accuracy an early-exit network may lose to its full depth (validation)


@dataclass(frozen=True)
class TrialResult:
    metrics: Metrics
    weights: bytes | None = None  # the trained state_dict, torch.save'd: workers return it, the driver stores it
    summary: str | None = None  # the built network, printable (Network.summary): MLflow logs it


@functools.lru_cache(maxsize=2)
def cached_dataset(name: str, data_dir: str = "") -> Dataset:
    return load_dataset(name, data_dir)


@functools.lru_cache(maxsize=2)
def _prepared(name: str, data_dir: str, resolution: int, train_subset: int) -> Dataset:
    return prepare(cached_dataset(name, data_dir), resolution, train_subset)


def trial_data(dataset: str, data_dir: str, recipe: Recipe) -> Dataset:
    """The data a trial trains and scores on: the data set as the recipe resizes and subsets it."""
    return _prepared(dataset, data_dir, recipe.resolution, recipe.train_subset)


def cheap_metrics(model: torch.nn.Module, input_shape: tuple[int, int, int], device: str, threads: int) -> Metrics:
    """What is known before training: exact size and cost, and measured latency. Only the timing
    waits for a quiet phase (counting needs none, and every ms of quiet pauses the other trials)."""
    params, macs = count_params(model), count_macs(model, input_shape)
    with quiet.measuring():
        lat = measure_latency(model, input_shape, device, threads=threads)
    return Metrics(params=params, macs=macs, latency_ms=lat.median_ms, latency_threads=lat.threads,
                   latency_runs=lat.runs, latency_realtime=lat.realtime)


def state_dict_bytes(model: torch.nn.Module) -> bytes:
    buffer = io.BytesIO()
    torch.save({k: v.cpu() for k, v in model.state_dict().items()}, buffer)
    return buffer.getvalue()


def evaluate(spec: TrialSpec) -> TrialResult:
    """Build, cost, train and validate one genotype; raises on failure (the caller records why).
    Writes no files: it may run on another machine."""
    # All of it is heavy work to a trial timing beside it on the same cores (building and counting
    # too, not only training): one training section, with this trial's own timings nested in it.
    with quiet.training():
        data = trial_data(spec.dataset, spec.data_dir, spec.recipe)
        torch.manual_seed(spec.recipe.seed)
        model: Network = build(parse(spec.genotype), data.input_shape, data.num_classes)
        summary = model.summary()
        m = cheap_metrics(model, data.input_shape, spec.device, spec.threads)
        t0 = time.perf_counter()
        augment = crop_flip if spec.recipe.augment and data.augmentable else None
        train(model, data.train, spec.recipe, spec.device, augment)
        m = m.merged(Metrics(train_seconds=time.perf_counter() - t0,
                             accuracy=accuracy_of(model, data.val, spec.device),
                             test_accuracy=accuracy_of(model, data.test, spec.device)))
        if model.exits:
            m = m.merged(exit_metrics(model, data.val, data.test, data.input_shape, spec.exit_tolerance,
                                      spec.device, spec.threads))
        else:  # one path: the expected cost is the cost
            m = m.merged(Metrics(expected_macs=m.macs, expected_latency_ms=m.latency_ms))
        return TrialResult(m, state_dict_bytes(model), summary)


def screen(genotype: str, dataset: str, data_dir: str, recipe: Recipe, device: str = "cpu") -> Metrics:
    """Cheap metrics of a candidate not yet trained, for a sampler that screens many: exact size
    and cost, and a short latency measurement (the trial measures it again, fully)."""
    quiet.checkpoint()  # the sampler screens many in a row: a trial beside it may want to time
    data = trial_data(dataset, data_dir, recipe)
    model = build(parse(genotype), data.input_shape, data.num_classes)
    lat = measure_latency(model, data.input_shape, device, warmup=2, min_runs=5, min_seconds=0.0,
                          warmup_seconds=0.0)
    return Metrics(params=count_params(model), macs=count_macs(model, data.input_shape), latency_ms=lat.median_ms)
