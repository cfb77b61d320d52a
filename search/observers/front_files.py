"""The front as files beside the study, kept up to date while a search runs, so it can be looked
at without any UI: ``<dir>/<study>/front.csv`` (what `search front --format csv` prints) and
``<dir>/<study>/pareto.png`` (every complete trial, the front in red)."""
from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import optuna

from ..pareto import front_figure, front_rows
from ..report import render

FRONT_CSV = "front.csv"
PARETO_PNG = "pareto.png"
# A plot of a 200-trial study costs this process 0.6-1.1 s, on cores the trials share: redrawn at
# most this often (about 2 % of a run's time), and at the end.
PLOT_EVERY_S = 30.0


def _replace(path: Path, write: Callable[[Path], object]) -> None:
    """Write through a temporary file of this process's own (two `search run`s may share a study),
    so a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(tmp)
    os.replace(tmp, path)


class FrontFiles:
    """An observer: rewrites the CSV after every told trial (80 ms), the plot at most every
    PLOT_EVERY_S."""

    def __init__(self, folder: Path, stream: TextIO | None = None) -> None:
        self.folder, self.stream = folder, stream
        self._plotted = -float("inf")
        self._stale = False
        self.error: str | None = None  # the first write that failed; the files are left as they were

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if trial.state != optuna.trial.TrialState.COMPLETE or self.error:
            return  # the front changes only with complete trials
        self._guard(self._write_csv, study)
        self._stale = True
        if time.monotonic() - self._plotted >= PLOT_EVERY_S:
            self._guard(self._write_plot, study)

    def close(self, study: optuna.Study, completed: bool) -> None:
        if self._stale and not self.error:
            self._guard(self._write_plot, study)

    def _guard(self, write: Callable[[optuna.Study], None], study: optuna.Study) -> None:
        """A view of the study must not stop the search: a failed write (a full disk, a folder made
        read-only) warns once and the files stop following; `search front` still answers."""
        if self.error:
            return
        try:
            write(study)
        except OSError as e:
            self.error = f"{type(e).__name__}: {e}"
            print(f"search: warning: cannot write the front files in {self.folder} ({self.error}); they stop "
                  f"following this run (`search front` prints the front)", file=self.stream or sys.stderr, flush=True)

    def _write_csv(self, study: optuna.Study) -> None:
        text = render(front_rows(study), "csv") + "\n"
        _replace(self.folder / FRONT_CSV, lambda p: p.write_text(text))

    def _write_plot(self, study: optuna.Study) -> None:
        figure = front_figure(study, {row["trial"] for row in front_rows(study)})
        _replace(self.folder / PARETO_PNG, lambda p: figure.savefig(p, format="png", dpi=100))
        self._plotted, self._stale = time.monotonic(), False
