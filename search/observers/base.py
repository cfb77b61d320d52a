"""What an observer of a search is: called with each told trial, closed at the end of the run."""
from __future__ import annotations

from typing import Protocol

import optuna


class Observer(Protocol):
    """Optuna's callback signature (``callbacks=[...]`` of ``study.optimize``), plus ``close``.

    ``__call__`` runs in the search process after every trial is told (COMPLETE or FAIL; a trial
    abandoned by an interrupt or a dead process counts as told FAIL). It must not raise for a
    fault of its own making (the study is the source of truth; an observer is a view of it)."""

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None: ...

    def close(self, study: optuna.Study, completed: bool) -> None:
        """The run ended: ``completed`` when the study holds the trials asked for."""
