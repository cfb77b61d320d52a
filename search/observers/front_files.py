"""The front as files beside the study, kept up to date while a search runs, so it can be looked
at without any UI: ``<dir>/<study>/front.csv`` (what `search front --format csv` prints) and
``<dir>/<study>/pareto.png`` (every complete trial, the front in red)."""
from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import optuna

from ..pareto import front_figure, front_rows
from ..report import render

FRONT_CSV = "front.csv"
PARETO_PNG = "pareto.png"
PLOT_EVERY_S = 5.0  # a plot costs ~0.2 s of this process: redrawn at most this often, and at the end


def _replace(path: Path, write: Callable[[Path], object]) -> None:
    """Write through a temporary file of this process's own (two `search run`s may share a study),
    so a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(tmp)
    os.replace(tmp, path)


class FrontFiles:
    """An observer: rewrites the CSV after every told trial, the plot at most every PLOT_EVERY_S."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._plotted = -float("inf")
        self._stale = False

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if trial.state != optuna.trial.TrialState.COMPLETE:
            return  # the front changes only with complete trials
        self._write_csv(study)
        self._stale = True
        if time.monotonic() - self._plotted >= PLOT_EVERY_S:
            self._write_plot(study)

    def close(self, study: optuna.Study, completed: bool) -> None:
        if self._stale:
            self._write_plot(study)

    def _write_csv(self, study: optuna.Study) -> None:
        text = render(front_rows(study), "csv") + "\n"
        _replace(self.folder / FRONT_CSV, lambda p: p.write_text(text))

    def _write_plot(self, study: optuna.Study) -> None:
        figure = front_figure(study, {row["trial"] for row in front_rows(study)})
        _replace(self.folder / PARETO_PNG, lambda p: figure.savefig(p, format="png", dpi=100))
        self._plotted, self._stale = time.monotonic(), False
