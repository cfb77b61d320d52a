"""Where trials are evaluated. An executor takes TrialSpecs and hands back (spec, metrics | error)."""
from __future__ import annotations

import traceback
from dataclasses import dataclass

from evaluators import TrialSpec, evaluate


@dataclass(frozen=True)
class Outcome:
    spec: TrialSpec
    metrics: dict | None
    error: str | None = None  # why the trial failed, when it did


def run_one(spec: TrialSpec) -> Outcome:
    try:
        return Outcome(spec, evaluate(spec))
    except Exception as e:  # any fault in a trial fails that trial only
        last = traceback.extract_tb(e.__traceback__)[-1] if e.__traceback__ else None
        where = f" ({last.filename.rsplit('/', 1)[-1]}:{last.lineno})" if last else ""
        return Outcome(spec, None, f"{type(e).__name__}: {e}{where}")


class LocalExecutor:
    """Evaluates each trial in this process, one at a time."""

    capacity = 1

    def __init__(self) -> None:
        self._pending: list[TrialSpec] = []

    def submit(self, spec: TrialSpec) -> None:
        self._pending.append(spec)

    def wait(self) -> list[Outcome]:
        """Block until at least one submitted trial is done; return the finished ones."""
        done = [run_one(spec) for spec in self._pending]
        self._pending.clear()
        return done

    def close(self) -> None:
        pass
