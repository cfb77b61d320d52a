"""Latency that does not move with the host's speed.

The same network timed on this VM in processes seconds apart read 0.72 to 1.54 ms: the host's
speed drifts (CPU steal, frequency, neighbours; a board's thermal throttling does the same). A
fixed reference network slows down with it. So every latency is timed interleaved with the
reference, run for run, in the same quiet phase and the same runtime and thread count, and
reported as

    latency_ms = (candidate / reference, their 10th percentiles over the rounds) x the reference's anchor

where the anchor is the reference's latency on this node at its steady speed: measured once
per node, runtime, input shape and thread count (the lower quartile of ten 0.1 s blocks, so a
slow spell during calibration does not set it) and kept in a small file
(``$HWNAS_CACHE``, default ``~/.cache/hwnas/latency-anchors.json``). Delete the file to
calibrate again. The raw median (``latency_raw_ms``) and the reference's median in the same
phase (``latency_reference_ms``) are recorded beside it.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import socket
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .nodecache import cache_dir

ANCHORS_FILE = "latency-anchors.json"
# A small fixed network of the space's own cells: cheap to time, and slowed by the host like them.
REFERENCE = "stem_c16_k3_s1_relu, ds_r1_k3_s2_c24_relu, ir_r2_k3_s2_e4_c32_relu, conv_r1_k3_s1_c48_relu, head_relu"
CALIBRATION_BLOCKS = 10
Forward = Callable[[], object]


@dataclass(frozen=True)
class Paired:
    raw_ms: float  # the candidate's median
    reference_ms: float  # the reference's median, in the same rounds
    ratio: float  # the candidate's 10th percentile over the reference's
    runs: int  # rounds timed


def paired_runs(forward: Forward, reference: Forward, warmup: int = 10, warmup_seconds: float = 0.05,
                min_runs: int = 30, min_seconds: float = 0.05, rounds: int = 0, max_seconds: float = 0.3) -> Paired:
    """Times ``forward`` and ``reference`` alternately, one run each a round, after warming both
    up, so both see the same states of the host. The ratio is of their 10th percentiles, the runs
    the host disturbed least: in a slow spell (the reference's median 1.3-2x its usual) the
    median of per-round ratios fell 3-5 % (the small reference slows down more than most
    candidates), the ratio of 10th percentiles did not (correlation with the host's speed -0.69
    against +0.18 over 147 blocks of 100 rounds). At least ``min_runs`` rounds and
    ``min_seconds``; then on up to ``rounds`` rounds while under ``max_seconds`` (a large network
    holds the quiet phase no longer than that)."""
    start, runs = time.perf_counter(), 0
    while runs < warmup or time.perf_counter() - start < warmup_seconds:
        forward()
        reference()
        runs += 1
    mine: list[float] = []
    theirs: list[float] = []
    start = time.perf_counter()
    while (len(mine) < min_runs or time.perf_counter() - start < min_seconds
           or (len(mine) < rounds and time.perf_counter() - start < max_seconds)):
        t0 = time.perf_counter()
        forward()
        t1 = time.perf_counter()
        reference()
        t2 = time.perf_counter()
        mine.append((t1 - t0) * 1e3)
        theirs.append((t2 - t1) * 1e3)
    return Paired(statistics.median(mine), statistics.median(theirs),
                  float(np.percentile(mine, 10) / np.percentile(theirs, 10)), len(mine))


@functools.lru_cache(maxsize=8)
def reference_forward(runtime: str, input_shape: tuple[int, int, int], threads: int) -> Forward:
    """The reference network as shipped in ``runtime``, on one input, ready to time."""
    import torch

    from hwnas.spaces import build, parse

    from .runtimes import ship

    torch.manual_seed(0)
    model = build(parse(REFERENCE), input_shape, 10).eval()
    run = ship(model, input_shape, runtime).forward(model, threads)
    one = np.random.default_rng(1).standard_normal((1, *input_shape)).astype(np.float32)
    return lambda: run(one)


def anchor_key(runtime: str, input_shape: tuple[int, int, int], threads: int) -> str:
    import torch

    reference = hashlib.sha256(REFERENCE.encode()).hexdigest()[:8]  # another reference is another anchor
    return (f"{socket.gethostname()} | {runtime} | {'x'.join(map(str, input_shape))} | {threads} threads | "
            f"torch {torch.__version__} | reference {reference}")


@functools.lru_cache(maxsize=8)
def anchor_ms(runtime: str, input_shape: tuple[int, int, int], threads: int) -> float:
    """The reference's steady latency on this node (see the module's docstring); measured on first
    use here, under the caller's timing conditions, then read from the node's file."""
    from .latency import time_runs

    key = anchor_key(runtime, input_shape, threads)
    path = cache_dir() / ANCHORS_FILE
    anchors = _read(path)
    if key in anchors:
        return float(anchors[key])
    forward = reference_forward(runtime, input_shape, threads)
    blocks = [statistics.median(time_runs(forward, warmup=10 if i == 0 else 0, warmup_seconds=0.1 if i == 0 else 0,
                                          min_runs=10, min_seconds=0.1)) for i in range(CALIBRATION_BLOCKS)]
    value = statistics.quantiles(blocks, n=4)[0]
    anchors = _read(path)  # another process may have written meanwhile: keep its entries, and its value
    if key in anchors:
        return float(anchors[key])
    anchors[key] = value
    _write(path, anchors)
    return value


def _read(path: Path) -> dict[str, float]:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write(path: Path, anchors: dict[str, float]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as f:
            json.dump(anchors, f, indent=1, sort_keys=True)
        os.replace(f.name, path)
    except OSError:  # a read-only home: the anchor holds for this process only (lru_cache)
        pass


def drift_scale(runtime: str, input_shape: tuple[int, int, int], threads: int) -> float:
    """anchor / the reference's latency now: what a raw figure timed just before (in the same
    conditions) is multiplied by, for timings that cannot interleave (the early-exit network's
    input-by-input run)."""
    from .latency import time_runs

    now = statistics.median(time_runs(reference_forward(runtime, input_shape, threads), warmup=3,
                                      warmup_seconds=0.0, min_runs=20, min_seconds=0.05))
    return anchor_ms(runtime, input_shape, threads) / now

