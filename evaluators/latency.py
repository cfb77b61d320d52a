"""Batch-1 inference latency on the evaluating device."""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Latency:
    median_ms: float
    runs: int
    threads: int
    device: str


def measure_latency(model: nn.Module, input_shape: tuple[int, int, int], device: str = "cpu",
                    warmup: int = 10, min_runs: int = 30, min_seconds: float = 0.25) -> Latency:
    """Median wall time of single-input forwards after warm-up, over at least ``min_runs`` runs and
    ``min_seconds``. On CUDA each run is timed with events after a synchronize."""
    model = model.to(device).eval()
    x = torch.randn(1, *input_shape, device=device)
    cuda = device.startswith("cuda")
    times: list[float] = []
    with torch.inference_mode():
        for _ in range(warmup):
            model(x)
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        while len(times) < min_runs or time.perf_counter() - start < min_seconds:
            if cuda:
                begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                begin.record()
                model(x)
                end.record()
                end.synchronize()
                times.append(begin.elapsed_time(end))
            else:
                t0 = time.perf_counter()
                model(x)
                times.append((time.perf_counter() - t0) * 1e3)
    return Latency(statistics.median(times), len(times), torch.get_num_threads(), device)
