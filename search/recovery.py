"""Trials left RUNNING by a search process that died (kill -9, a lost machine) are reclaimed:
marked FAIL with the reason and their parameters queued to be tried again."""
from __future__ import annotations

import datetime
import os
import socket

import optuna

Running = optuna.trial.TrialState.RUNNING


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), to tell a reused pid apart."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def owner() -> str:
    """host:pid:start of this process, stored on every trial it runs."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_start_time(pid) or '?'}"


OWNER = owner()
UNOWNED_GRACE_S = 60  # a trial killed between ask and its owner tag is given up after this


def abandon(study: optuna.Study, trial: optuna.trial.Trial | optuna.trial.FrozenTrial, reason: str) -> None:
    """Fail a trial with ``reason`` and queue its parameters to be tried again."""
    storage = study._storage
    storage.set_trial_user_attr(trial._trial_id, "fail_reason", f"abandoned: {reason}")
    storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)
    study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number}, skip_if_exists=False)


def _dead(owner_text: str) -> bool:
    host, pid, start = owner_text.rsplit(":", 2)
    if host != socket.gethostname():
        return False  # another machine's process: nothing here can tell whether it lives
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, ValueError):
        return False
    return start != "?" and _start_time(int(pid)) != start


def reclaim_abandoned(study: optuna.Study) -> list[int]:
    """Fail the RUNNING trials whose process on this host is gone and queue their parameters
    again; return their numbers. Trials of live processes (a second `search run`) stay."""
    reclaimed = []
    now = datetime.datetime.now()
    for t in study.get_trials(deepcopy=False, states=(Running,)):
        who = t.user_attrs.get("owner")
        unowned_and_old = who is None and t.datetime_start and (now - t.datetime_start).total_seconds() > UNOWNED_GRACE_S
        if not (unowned_and_old or (who and _dead(who))):
            continue
        try:
            abandon(study, t, f"its search process ({who or 'unknown'}) died")
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another process reclaimed it first
        reclaimed.append(t.number)
    return reclaimed
