"""What an executor is: it takes TrialSpecs and hands back Outcomes, nothing more. The loop owns
the study; an executor never touches it."""
from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

from hwnas.evaluators import Metrics, TrialResult, TrialSpec, quiet

Evaluate = Callable[[TrialSpec], TrialResult]


@dataclass(frozen=True)
class Outcome:
    spec: TrialSpec
    result: TrialResult | None  # None when the trial failed
    error: str | None = None  # why it failed
    retries: int = 0  # times it was run again because its worker died

    def retried(self, retries: int) -> Outcome:
        return replace(self, retries=retries)

    def on_node(self, node: str) -> Outcome:
        """The result with the node it trained on recorded (``train_node``)."""
        if self.result is None or self.result.rejected:  # a rejected candidate never trained
            return self
        return replace(self, result=replace(self.result, metrics=self.result.metrics.merged(Metrics(train_node=node))))


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
