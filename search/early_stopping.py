"""Multi-objective early stopping: MO-ASHA's promotion rule, asynchronous.

Optuna 5's ``report``/``should_prune`` refuse studies with more than one objective, so the loop
stops trials itself. With ``--early-stop mo-asha`` a trial trains up to each rung (epochs r,
r*eta, r*eta^2, ... below ``--epochs``; r = ``--min-epochs``), its worker hands back the training
state and the validation accuracy per epoch, and the loop asks :meth:`MOASHA.promote`: the trial
goes on (from that state, in whichever worker is free) when it is in the top 1/eta of the trials
that reached that rung, ranked by non-dominated sorting on (accuracy at the rung, the cheap
objectives) with NSGA-II's crowding distance breaking ties within a front; otherwise it is told
PRUNED with what it reached. No trial waits for a rung to fill (asynchronous, as ASHA): the
trials already at the rung are its competition, and a rung holding fewer than eta trials stops
none (too little evidence). The rung records live in the study (``epoch_accuracy`` on every
trial), so a continued run judges against every trial any run recorded.

A pause changes nothing in the trial's training (the state carries the optimiser, the one-cycle
schedule and the random generators): a trial that goes on ends exactly as it would have without
early stopping, so the options are not part of a study's identity and a study can take them up
or drop them between runs. Annealing at each rung instead was measured and not better
(docs/early-stopping.md, ``benchmarks/rung_correlation.py``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import optuna

from hwnas.evaluators.metrics import REGISTRY, Metrics

from . import attrs
from .pareto import nondominated_rows

METHODS = ("none", "mo-asha")
DEFAULT_METHOD = "none"
TS = optuna.trial.TrialState


def rungs_of(epochs: int, min_epochs: int, eta: int) -> tuple[int, ...]:
    """The epochs a trial is judged at: min_epochs * eta**k below ``epochs``."""
    rungs, r = [], min_epochs
    while r < epochs:
        rungs.append(r)
        r *= eta
    return tuple(rungs)


def early_stop_problem(method: str, epochs: int, min_epochs: int, eta: int) -> str | None:
    """Why these settings cannot stop trials, or None."""
    if method not in METHODS:
        return f"unknown --early-stop {method!r}; use {' or '.join(METHODS)}"
    if eta < 2:
        return f"--eta must be at least 2 (each rung keeps 1/eta of its trials), got {eta}"
    if min_epochs < 1:
        return f"--min-epochs must be a positive integer, got {min_epochs}"
    if method != "none" and min_epochs >= epochs:
        return (f"--min-epochs {min_epochs} is the first rung, at or above --epochs {epochs}: no trial could be "
                f"stopped early; lower --min-epochs or raise --epochs")
    return None


def crowding(points: np.ndarray) -> np.ndarray:
    """NSGA-II's crowding distance of each row among ``points``: the ends of each objective's range
    infinite, the others the sum over objectives of their neighbours' gap over the range."""
    n, k = points.shape
    distance = np.zeros(n)
    if n <= 2:
        return np.full(n, math.inf)
    for j in range(k):
        order = np.argsort(points[:, j], kind="stable")
        column = points[order, j]
        span = column[-1] - column[0]
        distance[order[[0, -1]]] = math.inf
        if span > 0:
            distance[order[1:-1]] += (column[2:] - column[:-2]) / span
    return distance


def promotion_order(points: np.ndarray) -> list[int]:
    """Row indices of ``points`` (every objective minimised), best first: front by front of
    non-dominated sorting, each front by decreasing crowding distance (ties by row)."""
    remaining = list(range(len(points)))
    order: list[int] = []
    while remaining:
        front = [remaining[i] for i in nondominated_rows(points[remaining])]
        spread = crowding(points[front])
        order += [front[i] for i in sorted(range(len(front)), key=lambda i: (-spread[i], front[i]))]
        taken = set(front)
        remaining = [i for i in remaining if i not in taken]
    return order


@dataclass(frozen=True)
class MOASHA:
    """Who goes on at a rung. ``objectives`` and ``maximize``: the study's, in order."""
    rungs: tuple[int, ...]
    eta: int
    objectives: tuple[str, ...]
    maximize: tuple[bool, ...]

    def point(self, metrics: Metrics, rung: int) -> list[float]:
        """A trial at ``rung`` as a point to minimise: accuracy at the rung, its cheap figures, and
        for a cost measured only after training (an early-exit network's expected MACs) its bound."""
        accuracy = (metrics.epoch_accuracy or [])[rung - 1]
        at_rung = metrics.cheap().merged(Metrics(accuracy=accuracy))
        return [-v if up else v
                for v, up in zip((at_rung.rejected_value(n) for n in self.objectives), self.maximize)]

    def peers(self, study: optuna.Study, rung: int) -> dict[int, Metrics]:
        """The figures of every trial that reached ``rung`` (running, stopped or finished; a
        duplicate is its original's repetition and not counted again)."""
        found = {}
        for t in study.get_trials(deepcopy=False, states=(TS.COMPLETE, TS.PRUNED, TS.RUNNING)):
            if attrs.DUPLICATE_OF in t.user_attrs or attrs.rejected(t):
                continue
            m = Metrics.from_attrs(t.user_attrs)
            if m.epoch_accuracy is not None and len(m.epoch_accuracy) >= rung:
                found[t.number] = m
        return found

    def promote(self, study: optuna.Study, number: int, rung: int) -> bool:
        """Whether trial ``number``, whose accuracy at ``rung`` the study holds, goes on."""
        peers = self.peers(study, rung)
        if number not in peers:
            raise ValueError(f"trial {number} has no accuracy recorded at epoch {rung}")
        if len(peers) < self.eta:
            return True
        numbers = sorted(peers)
        points = np.array([self.point(peers[n], rung) for n in numbers])
        position = promotion_order(points).index(numbers.index(number))
        return position < len(peers) // self.eta


def stopper_for(method: str, rungs: tuple[int, ...], eta: int, objectives: tuple[str, ...]) -> MOASHA | None:
    """The rule a run stops trials by, or None (``--early-stop none``: every trial trains to the end)."""
    if method == "none" or not rungs:
        return None
    return MOASHA(rungs, eta, objectives, tuple(REGISTRY[n].direction == "maximize" for n in objectives))
