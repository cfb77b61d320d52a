"""Trials evaluated in this process, one at a time."""
from __future__ import annotations

import socket
from dataclasses import replace

from hwnas.evaluators import TrialSpec, quiet

from .base import Evaluate, Outcome, run_one


class LocalExecutor:
    capacity = 1
    description = "this process, 1 trial at a time"

    def __init__(self, evaluate: Evaluate) -> None:
        self._evaluate = evaluate
        self._pending: list[TrialSpec] = []

    def submit(self, spec: TrialSpec) -> None:
        self._pending.append(spec)

    def wait(self) -> list[Outcome]:
        done = [replace(run_one(spec, self._evaluate), node=socket.gethostname()) for spec in self._pending]
        self._pending.clear()
        return done

    def driver_quiet(self) -> quiet.Quiet:
        """Nothing else runs beside this process's own work here."""
        return quiet.Alone()

    def screen_scale(self, runtime: str, input_shape: tuple[int, int, int]) -> float:
        return 1.0  # trials are timed here

    def close(self) -> None:
        pass
