"""Where trials are evaluated. An executor takes TrialSpecs and hands back (spec, metrics | error)."""
from __future__ import annotations

import traceback
from dataclasses import dataclass

from hwnas.evaluators import TrialSpec, evaluate, quiet


@dataclass(frozen=True)
class Outcome:
    spec: TrialSpec
    metrics: dict | None
    error: str | None = None  # why the trial failed, when it did
    retries: int = 0  # times it was run again because its worker died
    weights: bytes | None = None  # the trained state_dict (torch.save'd), when it succeeded


def run_one(spec: TrialSpec, evaluate=evaluate) -> Outcome:
    try:
        result = evaluate(spec)
        return Outcome(spec, result.metrics, weights=result.weights)
    except Exception as e:  # any fault in a trial fails that trial only
        last = traceback.extract_tb(e.__traceback__)[-1] if e.__traceback__ else None
        where = f" ({last.filename.rsplit('/', 1)[-1]}:{last.lineno})" if last else ""
        return Outcome(spec, None, f"{type(e).__name__}: {e}{where}")


class LocalExecutor:
    """Evaluates each trial in this process, one at a time."""

    capacity = 1
    description = "this process, 1 trial at a time"

    def __init__(self, evaluate=evaluate) -> None:
        self._evaluate = evaluate
        self._pending: list[TrialSpec] = []

    def submit(self, spec: TrialSpec) -> None:
        self._pending.append(spec)

    def wait(self) -> list[Outcome]:
        """Block until at least one submitted trial is done; return the finished ones."""
        done = [run_one(spec, self._evaluate) for spec in self._pending]
        self._pending.clear()
        return done

    def driver_quiet(self) -> quiet.Quiet:
        """How this process's own work (asking, screening, telling) keeps out of timings: nothing
        else runs beside it here."""
        return quiet.Alone()

    def close(self) -> None:
        pass


def local_defaults() -> tuple[int, int]:
    """(GPUs, CPU cores) of this machine, for defaults chosen before any Ray starts."""
    import os

    import torch

    return torch.cuda.device_count(), len(os.sched_getaffinity(0))


def make_executor(workers: int | None = None, ray_address: str | None = None,
                  cpus_per_trial: int | None = None, gpus_per_trial: float | None = None, evaluate=evaluate):
    """This process for one worker on this machine; otherwise Ray: a local one started for the run,
    or the cluster at ``ray_address`` (or $RAY_ADDRESS). Default workers: one per GPU, else one
    per core (2 workers x 1 thread beat 1 x 2 threads here: benchmarks/ray_throughput.py)."""
    import os

    address = ray_address or os.environ.get("RAY_ADDRESS") or None
    if address is None:
        gpus, cores = local_defaults()
        if workers is None:
            workers = gpus if gpus and gpus_per_trial != 0 else cores
        if workers == 1 and not gpus and cpus_per_trial is None and not gpus_per_trial:
            return LocalExecutor(evaluate)
    from .ray import RayExecutor

    return RayExecutor(workers, address, cpus_per_trial, gpus_per_trial, evaluate)
