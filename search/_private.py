"""The private APIs of Optuna and Ray this package relies on, each where no public one does the job.

Kept in this one module so an upgrade breaks in one place; tests/search/test_private.py pins the
behaviour each wrapper relies on.
"""
from __future__ import annotations

from typing import Any

import optuna


def set_trial_user_attr(study: optuna.Study, trial: optuna.trial.FrozenTrial, key: str, value: Any) -> None:
    """Set a user attribute of a trial held only as a FrozenTrial: the one a sampler's
    ``sample_relative`` gets, or one a dead process left RUNNING. Optuna's public setter lives on
    ``Trial``, which only the process that asked for the trial holds."""
    study._storage.set_trial_user_attr(trial._trial_id, key, value)


def ray_errors_to_stderr() -> None:
    """Ray prints a dead worker's notice on stdout, where our front table goes: send it to stderr.
    Ray has no switch for it; it looks ``ray._private.worker.print_to_stdstream`` up at each message
    (with ``log_to_driver=False`` too), so replacing it there redirects them all."""
    from ray._private import worker

    original = getattr(worker, "print_to_stdstream", None)
    if original is None or getattr(original, "to_stderr", False):
        return

    def to_stderr(data: dict, **kwargs: Any) -> None:
        original({**data, "is_err": True}, **kwargs)

    to_stderr.to_stderr = True  # type: ignore[attr-defined]
    worker.print_to_stdstream = to_stderr  # type: ignore[assignment]
