"""Multi-objective early stopping: MO-ASHA's promotion rule, asynchronous.

Optuna 5's ``report``/``should_prune`` refuse studies with more than one objective, so the loop
stops trials itself. With ``--early-stop mo-asha`` a trial trains up to each rung (epochs r,
r*eta, r*eta^2, ... below ``--epochs``; r = ``--min-epochs``), its worker hands back the training
state and the validation accuracy per epoch, and the loop asks :meth:`MOASHA.promote`: the trial
goes on (from that state, in whichever worker is free) when it is in the top 1/eta of the trials
that reached that rung, ranked by non-dominated sorting on (accuracy at the rung, the cheap
objectives) with an epsilon-net ordering each front (``promotion_order``); otherwise it is told
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

from dataclasses import dataclass

import numpy as np
import optuna

from hwnas.evaluators.metrics import REGISTRY, Metrics

from . import attrs
from .pareto import nondominated_rows

METHODS = ("none", "mo-asha")
# Measured (docs/early-stopping.md, nine runs): at equal --trials, a median 2.3x less training
# compute and a median 1.03 of the full-budget run's hypervolume (0.96-1.10). Applied where a rung fits below
# --epochs on a trained space; elsewhere there is nothing to stop and the default is none.
DEFAULT_METHOD = "mo-asha"
TS = optuna.trial.TrialState


def rungs_of(epochs: int, min_epochs: int, eta: int) -> tuple[int, ...]:
    """The epochs a trial is judged at: min_epochs * eta**k below ``epochs``."""
    rungs, r = [], min_epochs
    while r < epochs:
        rungs.append(r)
        r *= eta
    return tuple(rungs)


def default_method(epochs: int, min_epochs: int, eta: int, trained: bool) -> str:
    """``--early-stop`` when not given: mo-asha where it has a rung to stop trials at, else none."""
    return DEFAULT_METHOD if trained and rungs_of(epochs, min_epochs, eta) else "none"


def early_stop_problem(method: str, epochs: int, min_epochs: int, eta: int) -> str | None:
    """Why these settings cannot stop trials, or None (``method`` "": not given, the default)."""
    if method and method not in METHODS:
        return f"unknown --early-stop {method!r}; use {' or '.join(METHODS)}"
    if eta < 2:
        return f"--eta must be at least 2 (each rung keeps 1/eta of its trials), got {eta}"
    if min_epochs < 1:
        return f"--min-epochs must be a positive integer, got {min_epochs}"
    if method == "mo-asha" and min_epochs >= epochs:
        return (f"--min-epochs {min_epochs} is the first rung, at or above --epochs {epochs}: no trial could be "
                f"stopped early; lower --min-epochs or raise --epochs")
    return None


def promotion_order(points: np.ndarray) -> list[int]:
    """Row indices of ``points`` (every objective minimised), best first: front by front of
    non-dominated sorting, each front as an epsilon-net (Salinas et al.'s tie-break for MO-ASHA):
    its most accurate point (the first objective) first, then again and again the point farthest
    from those taken, in objectives scaled to their range over all points. A newcomer that opens
    a region of the front ranks high, wherever it falls in the trial order (NSGA-II's crowding
    gives every end of every objective the same infinite distance, and then the order decides:
    measured, it kept the first trials and stopped every later one)."""
    lo, hi = points.min(axis=0), points.max(axis=0)
    scaled = (points - lo) / np.where(hi > lo, hi - lo, 1.0)
    remaining = list(range(len(points)))
    order: list[int] = []
    while remaining:
        front = [remaining[i] for i in nondominated_rows(points[remaining])]
        taken = [min(front, key=lambda i: (scaled[i, 0], i))]
        rest = [i for i in front if i != taken[0]]
        while rest:
            gaps = [min(float(np.linalg.norm(scaled[i] - scaled[j])) for j in taken) for i in rest]
            taken.append(rest.pop(int(np.argmax(gaps))))
        order += taken
        remaining = [i for i in remaining if i not in set(front)]
    return order


@dataclass(frozen=True)
class MOASHA:
    """Who goes on at a rung. ``objectives`` and ``maximize``: the study's, the one training
    measures (accuracy) first."""
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
    first = sorted(objectives, key=lambda n: REGISTRY[n].cheap)  # what training measures leads the epsilon-net
    return MOASHA(eta, tuple(first), tuple(REGISTRY[n].direction == "maximize" for n in first))
