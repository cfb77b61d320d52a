"""What a run is asked to do: objectives and the run configuration."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from .errors import UsageError

# name -> optimisation direction
OBJECTIVES = {"accuracy": "maximize", "latency_ms": "minimize", "macs": "minimize", "params": "minimize"}
SAMPLERS = ("nsga2", "nsga3", "tpe", "gp", "botorch", "random")
DEFAULT_OBJECTIVES = ("accuracy", "latency_ms", "macs")
DEFAULT_SAMPLER = "tpe"


def parse_objectives(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise UsageError(f"--objectives is empty; choose from {', '.join(OBJECTIVES)}")
    for n in names:
        if n not in OBJECTIVES:
            raise UsageError(f"unknown objective {n!r}; choose from {', '.join(OBJECTIVES)}")
    if len(set(names)) != len(names):
        raise UsageError(f"objective listed twice in {text!r}")
    return names


@dataclass(frozen=True)
class RunConfig:
    space: str = "mobile"
    dataset: str = "digits"
    trials: int = 200
    sampler: str = DEFAULT_SAMPLER
    objectives: tuple[str, ...] = DEFAULT_OBJECTIVES
    study: str = "mobile"
    dir: str = "runs"
    epochs: int = 10
    seed: int = 0
    exits: bool = False
    # where trials run (not part of a study's identity); None = the default
    workers: int | None = None
    ray_address: str | None = None
    cpus_per_trial: int | None = None
    gpus_per_trial: float | None = None

    def __post_init__(self) -> None:
        for name, value in (("--workers", self.workers), ("--cpus-per-trial", self.cpus_per_trial)):
            if value is not None and value <= 0:
                raise UsageError(f"{name} must be a positive integer, got {value}")
        if self.gpus_per_trial is not None and not self.gpus_per_trial >= 0:
            raise UsageError(f"--gpus-per-trial must be a number >= 0, got {self.gpus_per_trial}")
        if self.trials <= 0:
            raise UsageError(f"--trials must be a positive integer, got {self.trials}")
        if self.epochs <= 0:
            raise UsageError(f"--epochs must be a positive integer, got {self.epochs}")
        if self.sampler not in SAMPLERS:
            raise UsageError(f"unknown sampler {self.sampler!r}; choose from {', '.join(SAMPLERS)}")
        parse_objectives(",".join(self.objectives))
        if not self.study or "/" in self.study or self.study.startswith("."):
            raise UsageError(f"bad study name {self.study!r}: use letters, digits, '-' and '_'")

    def identity(self) -> dict:
        """What must stay the same for trials to belong to one study."""
        return {"space": self.space, "dataset": self.dataset, "objectives": list(self.objectives),
                "epochs": self.epochs, "exits": self.exits}

    def recipe(self):
        """The training recipe of every trial (one place, for the driver and for MLflow)."""
        from evaluators import Recipe

        return Recipe(epochs=self.epochs, seed=self.seed)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["objectives"] = list(self.objectives)
        return d
