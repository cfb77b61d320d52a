"""What an executor is: it takes TrialSpecs and hands back Outcomes, nothing more. The loop owns
the study; an executor never touches it."""
from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from hwnas.evaluators import TrialResult, TrialSpec, quiet

Evaluate = Callable[[TrialSpec], TrialResult]


@dataclass(frozen=True)
class Outcome:
    spec: TrialSpec
    result: TrialResult | None  # None when the trial failed
    error: str | None = None  # why it failed
    retries: int = 0  # times it was run again because its worker died
    node: str = ""  # the machine it ran on (a Ray node: host/node id)


def run_one(spec: TrialSpec, evaluate: Evaluate) -> Outcome:
    """Evaluate one trial; any fault in it fails that trial only, with where it happened."""
    try:
        return Outcome(spec, evaluate(spec))
    except Exception as e:
        last = traceback.extract_tb(e.__traceback__)[-1] if e.__traceback__ else None
        where = f" ({last.filename.rsplit('/', 1)[-1]}:{last.lineno})" if last else ""
        return Outcome(spec, None, f"{type(e).__name__}: {e}{where}")


class Executor(Protocol):
    """Evaluates up to ``capacity`` trials at once.

    ``submit`` is called only while fewer than ``capacity`` trials are in flight; ``wait`` blocks
    until at least one is done and returns every finished one (each submitted spec comes back
    exactly once, unless ``close`` comes first). ``close`` releases workers; trials still in flight
    are dropped (the loop abandons them in the study)."""

    capacity: int
    description: str  # where trials run, for the banner

    def submit(self, spec: TrialSpec) -> None: ...

    def wait(self) -> list[Outcome]: ...

    def driver_quiet(self) -> quiet.Quiet:
        """How the asking process's own work (screening, telling) keeps out of the trials' timings."""

    def screen_scale(self, runtime: str, input_shape: tuple[int, int, int]) -> float:
        """What a latency timed in the asking process (a sampler's screen) is multiplied by to read
        as where trials are timed: 1, unless a device times them (``--latency-on``)."""

    def close(self) -> None: ...
