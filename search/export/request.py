"""What `search export` is asked: which trial (or how to pick one) and where to write it."""
from __future__ import annotations

from dataclasses import dataclass

from hwnas.evaluators.budgets import Budget

from ..errors import UsageError

PICKS = ("knee", "max-accuracy", "min-latency")
FILES = ("model.py", "weights.pt", "metadata.json", "model.onnx", "report.json", "report.txt")  # and
# model_int8.onnx for a study timed in onnxruntime-int8


@dataclass(frozen=True)
class ExportRequest:
    study: str
    out: str
    dir: str = "runs"
    trial: int | None = None
    pick: str | None = None  # default: knee, or max-accuracy when a budget is given
    budgets: tuple[Budget, ...] = ()  # choose among the front of the trials within these (and the run's)
    retrain_epochs: int | None = None
    report: bool = True  # measure the member in every runtime installed here (seconds: ExecuTorch lowers it)

    def __post_init__(self) -> None:
        if self.pick is not None and self.pick not in PICKS:
            raise UsageError(f"unknown --pick {self.pick!r}; choose from {', '.join(PICKS)}")
        if self.trial is not None and (self.pick or self.budgets):
            raise UsageError("--trial names one trial; --pick and the budgets choose among the front: "
                             "give one or the other")
        for b in self.budgets:
            if not b.limit > 0:
                raise UsageError(f"{b.flag} must be a positive number, got {b.limit:g}")
        if self.retrain_epochs is not None and not self.retrain_epochs > 0:
            raise UsageError(f"--retrain-epochs must be positive, got {self.retrain_epochs}")
