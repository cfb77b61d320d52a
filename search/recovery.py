"""Trials left RUNNING by a search process that died (kill -9, a lost machine) are reclaimed:
marked FAIL with the reason and their parameters queued to be tried again.

A trial whose network was not yet sampled when its process stopped (it holds no genotype, and
perhaps some of its parameters) is failed and not queued: its parameters are a sampler's half
answer, and completing them would make a network the sampler never chose. The next ask samples
afresh."""
from __future__ import annotations

import datetime
import os
import socket

import optuna

from . import attrs
from ._private import set_trial_user_attr

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


THIS_PROCESS = owner()  # the owner text of this process
UNOWNED_GRACE_S = 60  # a trial killed between ask and its owner tag is given up after this


def abandon(study: optuna.Study, trial: optuna.trial.Trial | optuna.trial.FrozenTrial,
            reason: str) -> optuna.trial.FrozenTrial | None:
    """Fail a trial with ``reason`` and, when its network was sampled, queue its parameters to be
    tried again. Returns the failed trial, or None when it was finished already (told just
    before an interrupt, or reclaimed by another process)."""
    try:
        if isinstance(trial, optuna.trial.Trial):
            trial.set_user_attr(attrs.FAIL_REASON, attrs.ABANDONED + reason)
        else:  # left by another process: no Trial object of it here
            set_trial_user_attr(study, trial, attrs.FAIL_REASON, attrs.ABANDONED + reason)
        told = study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
    except (optuna.exceptions.UpdateFinishedTrialError, ValueError):  # ValueError: tell of a finished trial
        return None
    if attrs.GENOTYPE in told.user_attrs:
        study.enqueue_trial(told.params, user_attrs={attrs.RETRY_OF: told.number}, skip_if_exists=False)
    return told


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


def reclaim_abandoned(study: optuna.Study, starting: bool = False) -> list[int]:
    """Fail the RUNNING trials whose process on this host is gone and queue their parameters
    again; return their numbers. Trials of live processes (a second `search run`) stay.
    ``starting``: a run of this process is starting, so this process's own RUNNING trials are
    reclaimed too. An earlier run here left them (its record of their end was lost: a torn
    journal), and runs of one process follow each other: otherwise the new run would wait for
    them forever, its owner being alive."""
    reclaimed = []
    now = datetime.datetime.now()
    for t in study.get_trials(deepcopy=False, states=(Running,)):
        who = t.user_attrs.get(attrs.OWNER)
        age = (now - t.datetime_start).total_seconds() if t.datetime_start else 0.0
        unowned_and_old = who is None and age > UNOWNED_GRACE_S
        ours = starting and who == THIS_PROCESS
        if not (ours or unowned_and_old or (who and _dead(who))):
            continue
        reason = "an earlier run in this process left it unfinished" if ours else \
            f"its search process ({who or 'unknown'}) died"
        if abandon(study, t, reason) is not None:
            reclaimed.append(t.number)
    return reclaimed
