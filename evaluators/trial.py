"""One trial's evaluation: genotype text in, metrics out. Runs anywhere (this process, a Ray worker)."""
from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from hwnas.spaces import Network, build, parse

from . import quiet, timer
from .budgets import Budget, over_budget
from .cost import count_macs, count_params
from .data import Dataset, Split, crop_flip, load_dataset, prepare
from .early_exit import exit_metrics
from .memory import peak_memory_mb
from .metrics import ALL_EXTRAS, Extras, Metrics
from .runtimes import (
    DEFAULT_RUNTIME,
    SCREENED_IN,
    THROUGHPUT_BATCH,
    accuracy_in,
    calibration_images,
    is_int8,
    ship,
    weights_of,
)
from .timer import How
from .training import Recipe, Trainer, accuracy_of


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
    runtime: str = DEFAULT_RUNTIME  # what latency, throughput and file size are measured in (evaluators.runtimes)
    throughput_batch: int = THROUGHPUT_BATCH
    budgets: tuple[Budget, ...] = ()  # a candidate over one is rejected before training
    latency_table: str = ""  # a table space: a device's latency table (evaluators.device_table) to read instead
    resume: Resume | None = None  # go on training from a rung (early stopping promoted the trial)


@dataclass(frozen=True)
class Resume:
    """Where a trial paused at a rung: its training state (``training.Trainer.state``) and the
    figures measured so far (cheap ones, accuracy per epoch, training time)."""
    state: bytes
    metrics: Metrics


@dataclass(frozen=True)
class TrialResult:
    metrics: Metrics
    weights: bytes | None = None  # the trained state_dict, torch.save'd: workers return it, the driver stores it
    summary: str | None = None  # the built network, printable (Network.summary): MLflow logs it
    rejected: str | None = None  # why it was not trained: the budgets it breaks (metrics: the cheap ones only)
    # trained up to a rung of Recipe.rungs and paused there to be judged: go on with
    # TrialSpec.resume = this (metrics: the cheap ones and the accuracy per epoch so far)
    paused: Resume | None = None


@functools.lru_cache(maxsize=2)
def cached_dataset(name: str, data_dir: str = "") -> Dataset:
    return load_dataset(name, data_dir)


@functools.lru_cache(maxsize=2)
def _prepared(name: str, data_dir: str, resolution: int, train_subset: int) -> Dataset:
    return prepare(cached_dataset(name, data_dir), resolution, train_subset)


def trial_data(dataset: str, data_dir: str, recipe: Recipe) -> Dataset:
    """The data a trial trains and scores on: the data set as the recipe resizes and subsets it."""
    return _prepared(dataset, data_dir, recipe.resolution, recipe.train_subset)


@functools.lru_cache(maxsize=1)
def _on_device(dataset: str, data_dir: str, resolution: int, train_subset: int, device: str) -> tuple[Split, Split]:
    data = _prepared(dataset, data_dir, resolution, train_subset)
    return data.train.to(device), data.val.to(device)


def device_data(spec: TrialSpec) -> tuple[Split, Split]:
    """The training and validation splits where the trial trains: on a GPU, copied there once per
    worker and kept as levels (no batch crosses from the host; Fashion-MNIST is 47 MB as uint8,
    against the GPU's gigabytes); on the CPU, the node's memory-mapped levels themselves."""
    if spec.device == "cpu":
        data = trial_data(spec.dataset, spec.data_dir, spec.recipe)
        return data.train, data.val
    r = spec.recipe
    return _on_device(spec.dataset, spec.data_dir, r.resolution, r.train_subset, spec.device)


def counted_metrics(model: Network, input_shape: tuple[int, int, int], runtime: str = DEFAULT_RUNTIME,
                    extras: Extras = ALL_EXTRAS) -> Metrics:
    """Exact size, cost and (``extras.peak_memory``) memory, counted: no timing."""
    memory = peak_memory_mb(model, input_shape, 1 if is_int8(runtime) else 4) if extras.peak_memory else None
    return Metrics(params=count_params(model), macs=count_macs(model, input_shape), peak_memory_mb=memory)


def cheap_metrics(model: Network, input_shape: tuple[int, int, int], device: str, threads: int,
                  runtime: str = DEFAULT_RUNTIME, throughput_batch: int = THROUGHPUT_BATCH,
                  calibration: np.ndarray | None = None, short: bool = False, extras: Extras = ALL_EXTRAS) -> Metrics:
    """What is known before training: ``counted_metrics``, and latency, throughput and file size
    measured in ``runtime`` where the installed timer times (``evaluators.timer``; ``short``: a
    screening's few runs; ``extras``: which costs beyond counts and latency)."""
    how = How(threads, runtime, throughput_batch, short, extras)
    counted = counted_metrics(model, input_shape, runtime, extras)
    return counted.merged(timer.current().costs(model, input_shape, device, how, calibration))


def evaluate(spec: TrialSpec) -> TrialResult:
    """Build, cost, train and validate one genotype; raises on failure (the caller records why).
    A network over a budget is not trained: its cheap figures come back with the reason. With
    ``Recipe.rungs`` it trains up to the next rung only and comes back ``paused`` there (the
    validation accuracy after each epoch is in its metrics either way); ``spec.resume`` goes on
    from such a pause. Writes no files: it may run on another machine."""
    # All of it is heavy work to a trial timing beside it on the same cores (building and counting
    # too, not only training): one training section, with this trial's own timings nested in it.
    with quiet.training():
        data = trial_data(spec.dataset, spec.data_dir, spec.recipe)
        torch.manual_seed(spec.recipe.seed)
        model: Network = build(parse(spec.genotype), data.input_shape, data.num_classes)
        summary = model.summary()
        calibration = calibration_images(data.train)
        if spec.resume is None:
            m = cheap_metrics(model, data.input_shape, spec.device, spec.threads, spec.runtime,
                              spec.throughput_batch, calibration)
            rejected = over_budget(m, spec.budgets)
            if rejected:
                return TrialResult(m, summary=summary, rejected=rejected)
        else:  # measured before the pause: not again
            m = spec.resume.metrics
        m, trainer = _train(model, spec, data, m)
        if trainer.epoch < spec.recipe.epochs:
            return TrialResult(m, summary=summary, paused=Resume(trainer.state(), m))
        model = trainer.trained()
        m = m.merged(Metrics(accuracy=(m.epoch_accuracy or [])[-1],  # read after the last epoch
                             test_accuracy=accuracy_of(model, data.test, spec.device)))
        if is_int8(spec.runtime):  # what ships is the quantized model: its accuracy is the trial's
            shipped = ship(model, data.input_shape, spec.runtime, calibration)
            forward = shipped.forward(model, spec.threads)
            m = m.merged(Metrics(accuracy_fp32=m.accuracy, test_accuracy_fp32=m.test_accuracy,
                                 accuracy=accuracy_in(forward, data.val),
                                 test_accuracy=accuracy_in(forward, data.test)))
            model.to(spec.device)
        if model.exits:
            m = m.merged(exit_metrics(model, data.val, data.test, data.input_shape, spec.exit_tolerance,
                                      spec.device, spec.threads))
        else:  # one path: the expected cost is the cost
            m = m.merged(Metrics(expected_macs=m.macs, expected_latency_ms=m.latency_ms))
        return TrialResult(m, weights_of(model), summary)


def _train(model: Network, spec: TrialSpec, data: Dataset, m: Metrics) -> tuple[Metrics, Trainer]:
    """Train up to the next rung after where the trial stands (or to the end), reading the
    validation accuracy after each epoch; ``m`` with the accuracy per epoch, the training time
    and the GPU memory added to what it held."""
    t0 = time.perf_counter()
    augment = crop_flip if spec.recipe.augment and data.augmentable else None
    train_split, val_split = device_data(spec)
    gpu = spec.device.startswith("cuda")
    if gpu:
        torch.cuda.reset_peak_memory_stats(spec.device)
    trainer = Trainer(model, spec.recipe, len(train_split), spec.device,
                      spec.resume.state if spec.resume else None)
    stop = next((r for r in spec.recipe.rungs if r > trainer.epoch), spec.recipe.epochs)
    accuracies = list(m.epoch_accuracy or [])
    while trainer.epoch < stop:
        trainer.train_epoch(train_split, augment)
        accuracies.append(accuracy_of(trainer.model, val_split, spec.device))
    memory = max(m.gpu_memory_mb or 0.0, torch.cuda.max_memory_allocated(spec.device) / 2**20) if gpu else None
    return m.merged(Metrics(epoch_accuracy=accuracies, train_precision=spec.recipe.precision, gpu_memory_mb=memory,
                            train_seconds=(m.train_seconds or 0.0) + time.perf_counter() - t0)), trainer


# Candidates a screen times in one quiet phase, built and counted before it: a trial beside the
# screening process then parks once for them, not once a candidate (a park waits for the trial's
# next step: about 25 ms on this 2-core machine, as long as a candidate's short timing). Measured
# by benchmarks/timing_cost.py (2 workers, 24 trials, 6 pairs): the screening halted the trainers
# 4.8 s instead of 9.1 s, and a run took 12 % less time. A sampler's pool (16) is one phase; a
# longer list is cut so that no trial waits long to time its own model.
SCREEN_PHASE = 16


def screen(genotypes: Sequence[str], dataset: str, data_dir: str, recipe: Recipe, device: str = "cpu",
           runtime: str = DEFAULT_RUNTIME, throughput_batch: int = THROUGHPUT_BATCH,
           extras: Extras = ALL_EXTRAS) -> list[Metrics | None]:
    """Cheap metrics of candidates not yet trained, for a sampler that screens many: exact size,
    cost and memory, and a short timing in the runtime they are screened in
    (``runtimes.SCREENED_IN``; the trial measures in its own runtime, fully). None for a genotype
    that makes no network (or cannot be timed): it is no candidate."""
    data = trial_data(dataset, data_dir, recipe)
    screened_in = SCREENED_IN[runtime]
    where = "cpu" if screened_in != DEFAULT_RUNTIME else device
    how = How(1, screened_in, throughput_batch, short=True, extras=extras)
    out: list[Metrics | None] = []
    for i in range(0, len(genotypes), SCREEN_PHASE):
        built: list[tuple[Network, Metrics] | None] = []
        for genotype in genotypes[i:i + SCREEN_PHASE]:
            quiet.checkpoint()  # a sampler screens many in a row: a trial beside it may want to time
            try:
                model = build(parse(genotype), data.input_shape, data.num_classes)
                built.append((model, counted_metrics(model, data.input_shape, screened_in, extras)))
            except Exception:  # broken: never proposed
                built.append(None)
        with quiet.measuring() if any(built) else contextlib.nullcontext():  # the timings below nest in it
            for b in built:
                try:
                    out.append(None if b is None else
                               b[1].merged(timer.current().costs(b[0], data.input_shape, where, how)).compared())
                except Exception:
                    out.append(None)
    return out
