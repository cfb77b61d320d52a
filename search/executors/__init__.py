"""Where trials are evaluated: in this process or on Ray, behind one protocol (``Executor``)."""
from __future__ import annotations

import os

from hwnas.evaluators import Evaluation

from ..errors import UsageError
from .base import Evaluate, Executor, Outcome, run_one
from .local import LocalExecutor

__all__ = ["Evaluate", "Executor", "LocalExecutor", "Outcome", "local_defaults", "make_executor", "run_one"]


def local_defaults() -> tuple[int, int]:
    """(GPUs, CPU cores) of this machine, for defaults chosen before any Ray starts."""
    import torch

    return torch.cuda.device_count(), len(os.sched_getaffinity(0))


def make_executor(evaluation: Evaluation, workers: int | None = None, ray_address: str | None = None,
                  cpus_per_trial: int | None = None, gpus_per_trial: float | None = None,
                  evaluate: Evaluate | None = None, device: str = "cpu", latency_on: str | None = None) -> Executor:
    """This process for a local evaluation (a table) or one worker on this machine; otherwise Ray:
    a local one started for the run, or the cluster at ``ray_address`` (or $RAY_ADDRESS). Default
    workers: on ``device`` cpu one per core (2 workers x 1 thread beat 1 x 2 threads here:
    benchmarks/ray_throughput.py), on cuda one per ``gpus_per_trial`` share of the GPUs (1: one per
    GPU; 0.25: four per GPU). Trials on the CPU are given no GPU. ``latency_on``: the custom
    resource of the node that times every candidate (always Ray). ``evaluate`` replaces the
    evaluation's own (tests inject faults)."""
    evaluate = evaluate or evaluation.evaluate
    if evaluation.local:
        return LocalExecutor(evaluate)
    gpu = device != "cpu"
    gpus_per_trial = (gpus_per_trial or 1.0) if gpu else 0.0
    address = ray_address or os.environ.get("RAY_ADDRESS") or None
    if latency_on and address is None:  # a Ray started for this run has no device in it
        raise UsageError(f"--latency-on {latency_on} times on a device that joined a Ray cluster: give the "
                         f"cluster's --ray-address HEAD:PORT (docs/parallel-and-latency.md#timing-on-a-device)")
    if address is None:
        gpus, cores = local_defaults()
        if workers is None:
            workers = max(1, int(gpus / gpus_per_trial)) if gpu else cores
        if workers == 1 and not gpu and cpus_per_trial is None and not latency_on:
            return LocalExecutor(evaluate)
    from .ray import RayExecutor

    return RayExecutor(workers, address, cpus_per_trial, gpus_per_trial, evaluate, latency_on=latency_on)
