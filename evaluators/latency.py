"""Batch-1 inference latency on the evaluating device."""
from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn


@dataclass(frozen=True)
class Latency:
    median_ms: float
    runs: int
    threads: int
    device: str
    realtime: bool  # timed at real-time priority (see ``timing``)


SHORT: dict[str, Any] = dict(warmup=2, min_runs=5, min_seconds=0.0, warmup_seconds=0.0)  # a screening's few runs


def measure_latency(model: nn.Module, input_shape: tuple[int, int, int], device: str = "cpu",
                    warmup: int = 10, min_runs: int = 30, min_seconds: float = 0.05,
                    threads: int = 0, warmup_seconds: float = 0.05) -> Latency:
    """Median wall time of single-input forwards, over at least ``min_runs`` runs and ``min_seconds``
    (0.05 s: a median as steady as over 0.25 s here, and a Ray run pauses other trials while it
    times), after at least ``warmup`` runs and ``warmup_seconds`` of warm-up: when a Ray run's quiet
    phase begins, the node takes tens of ms to settle (forwards run 25 % slow in its first 10 ms,
    2-3 % up to 70 ms). On CUDA each run is timed with events after a synchronize, once the GPU's
    clocks have settled (``settle``). ``threads`` and
    the priority apply to the measurement only (see ``timing``)."""
    with timing(threads, device) as realtime:
        return _measure(model, input_shape, device, warmup, warmup_seconds, min_runs, min_seconds, realtime)


@contextlib.contextmanager
def timing(threads: int, device: str = "cpu", realtime: bool = True) -> Iterator[bool]:
    """The conditions every latency figure is taken in, restored afterwards: torch's CPU thread
    count set to ``threads`` (0 = leave it), and a one-thread CPU timing run at real-time priority
    (SCHED_FIFO) where the OS allows it (root, CAP_SYS_NICE or ``ulimit -r`` >= 1). Yields whether
    it got it. Why: other threads that wake (Ray's daemons and parked workers, even in a quiet
    phase) preempt a normal thread though another core is idle: 10-35 times in a 0.1 s timing on a
    2-core VM, +5-10 %; at real-time priority, 0-2 times. A many-thread timing keeps the normal
    policy (its helper threads would not share the priority), and so does a process with one core
    (the rest of the machine would stall while it times). ``realtime=False``: the thread count
    alone, for untimed work that must compute exactly as the timing will (same threads, same
    rounding)."""
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        alone = torch.get_num_threads() == 1 and len(os.sched_getaffinity(0)) > 1
        with _realtime(realtime and device == "cpu" and alone) as got:
            yield got
    finally:
        torch.set_num_threads(previous)


@contextlib.contextmanager
def _realtime(wanted: bool) -> Iterator[bool]:
    """This thread (pid 0 = the calling thread on Linux) at the lowest real-time priority inside."""
    policy = getattr(os, "SCHED_FIFO", None)
    if not wanted or policy is None:
        yield False
        return
    before, param = os.sched_getscheduler(0), os.sched_getparam(0)
    try:
        os.sched_setscheduler(0, policy, os.sched_param(1))
    except OSError:  # not permitted here: time at normal priority
        yield False
        return
    try:
        yield True
    finally:
        os.sched_setscheduler(0, before, param)


def _measure(model: nn.Module, input_shape: tuple[int, int, int], device: str, warmup: int, warmup_seconds: float,
             min_runs: int, min_seconds: float, realtime: bool) -> Latency:
    model = model.to(device).eval()
    x = torch.randn(1, *input_shape, device=device)
    with torch.inference_mode():
        times = time_runs(lambda: model(x), device.startswith("cuda"), warmup, warmup_seconds, min_runs, min_seconds)
    return Latency(statistics.median(times), len(times), torch.get_num_threads(), device, realtime)


def time_runs(forward: Callable[[], object], cuda: bool = False, warmup: int = 10, warmup_seconds: float = 0.05,
              min_runs: int = 30, min_seconds: float = 0.05) -> list[float]:
    """Milliseconds of each timed call of ``forward`` (any runtime's), after the warm-up. On CUDA
    each run is timed with events after a synchronize, and a full timing (``warmup_seconds`` > 0)
    warms up until the GPU has settled (``settle``)."""
    start, runs = time.perf_counter(), 0
    while runs < warmup or time.perf_counter() - start < warmup_seconds:
        forward()
        if cuda:
            torch.cuda.synchronize()
        runs += 1
    if cuda and warmup_seconds > 0:
        settle(lambda: statistics.median(_timed_runs(forward, cuda, SETTLE_WINDOW)))
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - start < min_seconds:
        times.extend(_timed_runs(forward, cuda, 1))
    return times


def _timed_runs(forward: Callable[[], object], cuda: bool, n: int) -> list[float]:
    times = []
    for _ in range(n):
        if cuda:
            begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            begin.record()
            forward()
            end.record()
            end.synchronize()
            times.append(begin.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            forward()
            times.append((time.perf_counter() - t0) * 1e3)
    return times


# A GPU's clocks ramp up from idle over a fraction of a second (the lent H200 idles at 345 MHz
# and runs at 1980): a fixed 0.05 s warm-up can end mid-ramp. Windows of runs are timed until one
# is no faster than the one before it (by more than the tolerance), within a limit.
SETTLE_WINDOW = 10  # runs
SETTLE_TOLERANCE = 0.02
SETTLE_SECONDS = 1.0


def settle(window: Callable[[], float], seconds: float = SETTLE_SECONDS,
           clock: Callable[[], float] = time.perf_counter) -> int:
    """Calls ``window`` (a window of runs' median, ms) until one is no more than ``SETTLE_TOLERANCE``
    faster than the one before it, or ``seconds`` have passed; returns the windows called."""
    deadline = clock() + seconds
    previous, calls = window(), 1
    while clock() < deadline:
        now = window()
        calls += 1
        if now >= previous * (1 - SETTLE_TOLERANCE):
            break
        previous = now
    return calls


def start_cuda(device: str) -> None:
    """Start CUDA in this process now, if ``device`` is a GPU: its context, cuDNN and cuBLAS, the
    kernels of a small convolutional network's training step and forward. A process's first CUDA
    work takes a second or more; in a worker it would fall into its first trial's quiet phase,
    while the other trials on its GPU wait (at four a GPU, the first four would start CUDA one
    after another). The random generators are left as they were."""
    if not device.startswith("cuda") or not torch.cuda.is_available():
        return
    first_steps(torch.device(device))
    torch.cuda.synchronize(device)


def first_steps(where: torch.device) -> None:
    """A small convolutional network's training step and forward on ``where``, the random
    generators (the CPU's and ``where``'s) left as they were."""
    gpus = [where.index if where.index is not None else torch.cuda.current_device()] if where.type == "cuda" else []
    with torch.random.fork_rng(devices=gpus):
        net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                            nn.Flatten(), nn.Linear(8, 10)).to(where)
        x = torch.zeros(8, 3, 16, 16, device=where)
        nn.functional.cross_entropy(net(x), torch.zeros(8, dtype=torch.long, device=where)).backward()
        with torch.inference_mode():
            net.eval()(x[:1])


def device_problem(device: str, check_available: bool = False, bf16: bool = False) -> str | None:
    """Why ``device`` is not a device name (cpu, cuda, cuda:N), or None. With ``check_available``,
    also why this machine cannot run it (a study made on a GPU machine stays readable elsewhere),
    and, with ``bf16``, why it cannot train in bf16."""
    import re

    if device == "cpu":
        return None
    if not re.fullmatch(r"cuda(:\d+)?", device):
        return f"unknown --device {device!r}; use cpu or cuda (cuda:N for one GPU of several)"
    if not check_available:
        return None
    if not torch.cuda.is_available():
        return f"--device {device} asked, but CUDA is not available here (torch {torch.__version__}); use --device cpu"
    index = int(device.split(":")[1]) if ":" in device else 0
    if index >= torch.cuda.device_count():
        return f"--device {device} asked, but this machine has {torch.cuda.device_count()} CUDA device(s)"
    if bf16 and not torch.cuda.is_bf16_supported():
        return f"--precision bf16 asked, but {torch.cuda.get_device_name(index)} has no bf16; use --precision fp32"
    return None
