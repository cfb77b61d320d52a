"""Where a trial's model is timed: in the trial's own process, or on a device elsewhere.

By default a trial times its model where it trains (``Here``), in a quiet phase (``evaluators.quiet``).
A search with ``--latency-on RESOURCE`` installs in each Ray worker a timer that sends the model to
the device's node as data, a ``DeviceTiming`` (genotype text and weights: never pickled code), and
waits for its figures (``search.executors.device``). Either way the figures come from
``measured_costs`` and name the node they were timed on (``latency_node``).
"""
from __future__ import annotations

import contextlib
import io
import socket
import statistics
from collections.abc import Callable
from contextlib import AbstractContextManager as ContextManager
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from hwnas.spaces import Network

from . import quiet
from .latency import SHORT, measure_latency, time_runs
from .metrics import ALL_EXTRAS, Extras, Metrics
from .reference import reference_forward
from .runtimes import DEFAULT_RUNTIME, THROUGHPUT_BATCH, Shipped, runtime_costs, ship


@dataclass(frozen=True)
class How:
    """How a model is timed: threads, runtime, throughput batch, a screening's few runs or a
    trial's full ones, and which costs beyond latency."""
    threads: int = 1
    runtime: str = DEFAULT_RUNTIME
    throughput_batch: int = THROUGHPUT_BATCH
    short: bool = False
    extras: Extras = ALL_EXTRAS


def measured_costs(model: torch.nn.Module, input_shape: tuple[int, int, int], device: str, how: How,
                   calibration: np.ndarray | None = None,
                   phase: Callable[[], ContextManager] = quiet.measuring) -> Metrics:
    """Latency, throughput and file size of ``model`` on ``device`` in ``how.runtime``. Only the
    timing itself is inside ``phase`` (building the runtime's file and the reference are not: every
    ms of a quiet phase pauses the other trials on the node)."""
    if how.runtime == DEFAULT_RUNTIME and device != "cpu":  # a GPU: CUDA-event latency
        with phase():
            lat = measure_latency(model, input_shape, device, threads=how.threads, **(SHORT if how.short else {}))
            rate = (_cuda_throughput(model, input_shape, device, how.throughput_batch)
                    if how.extras.throughput else None)
        return Metrics(latency_ms=lat.median_ms, latency_threads=lat.threads, latency_runs=lat.runs,
                       latency_realtime=lat.realtime, latency_runtime=how.runtime, throughput=rate,
                       model_kb=len(ship(model, input_shape, how.runtime).file) / 1024)
    # torch runs the module itself: its file (weights.pt) is made only to be weighed
    weighed = how.extras.model_size or how.runtime != DEFAULT_RUNTIME
    shipped = ship(model, input_shape, how.runtime, calibration) if weighed else Shipped(how.runtime, b"")
    reference_forward(how.runtime, input_shape, how.threads)  # built (once a process) before the quiet phase
    with phase():
        costs = runtime_costs(model, input_shape, shipped, how.threads, how.throughput_batch, how.short, how.extras)
    model.to(device)
    return costs


def _cuda_throughput(model: torch.nn.Module, input_shape: tuple[int, int, int], device: str, batch: int) -> float:
    """Images a second at ``batch`` on a GPU, timed with CUDA events."""
    model = model.to(device).eval()
    x = torch.randn(batch, *input_shape, device=device)
    with torch.inference_mode():
        times = time_runs(lambda: model(x), cuda=True, warmup=2, min_runs=5, min_seconds=0.0, warmup_seconds=0.0)
    return batch / (statistics.median(times) / 1e3)


@dataclass(frozen=True)
class DeviceTiming:
    """A model to time on a device, as data: the device builds it from the genotype and loads the
    weights (int8 calibration images ride along: quantizing is part of shipping)."""
    genotype: str
    weights: bytes
    input_shape: tuple[int, int, int]
    num_classes: int
    how: How
    calibration: np.ndarray | None = None

    def model(self) -> Network:
        from hwnas.spaces import build, parse

        model = build(parse(self.genotype), self.input_shape, self.num_classes)
        model.load_state_dict(torch.load(io.BytesIO(self.weights), weights_only=True))
        return model


class Timer(Protocol):
    def costs(self, model: Network, input_shape: tuple[int, int, int], device: str, how: How,
              calibration: np.ndarray | None = None) -> Metrics:
        """``measured_costs`` of ``model`` (a built ``Network``) where this timer times, with
        ``latency_node`` saying where that was. ``device``: where the model is now."""


class Here:
    """Times in this process, in its quiet phase; ``node``: how this process's machine is named."""

    def __init__(self, node: str | None = None) -> None:
        self.node = node or socket.gethostname()

    def costs(self, model: Network, input_shape: tuple[int, int, int], device: str, how: How,
              calibration: np.ndarray | None = None) -> Metrics:
        m = measured_costs(model, input_shape, device, how, calibration)
        return m.merged(Metrics(latency_node=self.node))


def on_device(timing: DeviceTiming, device: str, node: str) -> Metrics:
    """What a device's node does with a ``DeviceTiming``: nothing else runs there, so no quiet phase."""
    m = measured_costs(timing.model(), timing.input_shape, device, timing.how, timing.calibration,
                       contextlib.nullcontext)
    return m.merged(Metrics(latency_node=node))


_current: Timer = Here()


def install(timer: Timer) -> None:
    global _current
    _current = timer


def current() -> Timer:
    return _current
