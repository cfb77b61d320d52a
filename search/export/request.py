"""What `search export` is asked: which trial (or how to pick one) and where to write it."""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import UsageError

PICKS = ("knee", "max-accuracy", "min-latency")
FILES = ("model.py", "weights.pt", "metadata.json", "model.onnx")


@dataclass(frozen=True)
class ExportRequest:
    study: str
    out: str
    dir: str = "runs"
    trial: int | None = None
    pick: str | None = None  # default: knee, or max-accuracy when a budget is given
    max_latency_ms: float | None = None
    max_macs: int | None = None
    retrain_epochs: int | None = None

    def __post_init__(self) -> None:
        if self.pick is not None and self.pick not in PICKS:
            raise UsageError(f"unknown --pick {self.pick!r}; choose from {', '.join(PICKS)}")
        if self.trial is not None and (self.pick or self.budgeted):
            raise UsageError("--trial names one trial; --pick and the budgets choose among the front: "
                             "give one or the other")
        for name, value in (("--max-latency-ms", self.max_latency_ms), ("--max-macs", self.max_macs),
                            ("--retrain-epochs", self.retrain_epochs)):
            if value is not None and not value > 0:
                raise UsageError(f"{name} must be positive, got {value}")

    @property
    def budgeted(self) -> bool:
        return self.max_latency_ms is not None or self.max_macs is not None
