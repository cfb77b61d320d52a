"""The Pareto math in one place: which points are non-dominated, the hypervolume a set covers and
a point adds, a study's front as rows, how good it is (normalised hypervolume) and its plot.

Objectives are normalised as in NAS-Bench-201 comparisons: a maximised fraction (accuracy, in
[0, 1]) becomes the loss ``1 - value``, a maximised rate (throughput) ``1 - value / its largest
value``; a minimised cost becomes ``cost / its largest value among the study's complete trials``.
The reference point is 1 on every axis, so the hypervolume lies in [0, 1] and grows as the front
improves.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna

from hwnas.evaluators.budgets import Budget, over_budget
from hwnas.evaluators.metrics import BUDGETS, COLUMNS, REGISTRY, Metrics

from . import attrs

if TYPE_CHECKING:
    from matplotlib.axis import Axis
    from matplotlib.figure import Figure

Complete = optuna.trial.TrialState.COMPLETE
Maximize = optuna.study.StudyDirection.MAXIMIZE
Row = dict[str, Any]  # column -> plain value (int, float, list, str), as reports print it


# ---- points (rows, every objective minimised) ------------------------------------------------------

def nondominated_rows(points: np.ndarray) -> list[int]:
    """Indices of the rows of ``points`` (minimised) that no other row dominates, in order. In
    lexicographic order a row can only be dominated by an earlier one, so each is checked against
    the rows kept so far."""
    points = np.asarray(points, dtype=float)
    kept: list[int] = []
    for i in np.lexsort(points.T[::-1]):
        p = points[i]
        if kept:
            others = points[kept]
            if np.any(np.all(others <= p, axis=1) & np.any(others < p, axis=1)):
                continue
        kept.append(int(i))
    return sorted(kept)


def nondominated(points: np.ndarray) -> np.ndarray:
    """The rows of ``points`` (minimised) that no other row dominates."""
    points = np.asarray(points, dtype=float)
    return points[nondominated_rows(points)]


def hypervolume(losses: np.ndarray) -> float:
    """Volume dominated by ``losses`` (rows in [0, 1]) up to the reference point (1, ..., 1), exact:
    sliced along the first objective, each slice the hypervolume of the rest in one fewer dimension."""
    losses = np.asarray(losses, dtype=float)
    losses = losses[np.all(losses < 1.0, axis=1)]  # a point on or past the reference adds nothing
    if len(losses) == 0:
        return 0.0
    if losses.shape[1] == 1:
        return float(1.0 - losses.min())
    front = nondominated(losses)
    front = front[np.argsort(front[:, 0], kind="stable")]
    bounds = np.append(front[:, 0], 1.0)
    return float(sum((bounds[i + 1] - bounds[i]) * hypervolume(front[:i + 1, 1:]) for i in range(len(front))
                     if bounds[i + 1] > bounds[i]))


def improvement(points: np.ndarray, front: np.ndarray) -> np.ndarray:
    """Hypervolume each point (rows, minimised, in [0, 1]) adds to ``front``, reference 1: the
    volume it dominates that ``front`` does not, sliced along the first objective."""
    if points.shape[1] == 0:
        return np.full(len(points), float(len(front) == 0))
    if points.shape[1] == 1:
        return np.clip(front[:, 0].min(initial=1.0) - points[:, 0], 0, None)
    steps = np.unique(np.clip(front[:, 0], 0, 1))
    bounds = np.concatenate([[0.0], steps, [1.0]])
    total = np.zeros(len(points))
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        width = np.clip(hi - np.maximum(points[:, 0], lo), 0, None)
        if width.any():
            total += width * improvement(points[:, 1:], front[front[:, 0] <= lo, 1:])
    return total


def normalised_losses(values: np.ndarray, maximize: list[bool], scale: np.ndarray) -> np.ndarray:
    """Rows of objective values -> losses in [0, 1]: ``1 - v / scale`` where maximised (scale 1
    for a fraction such as accuracy), ``v / scale`` where not."""
    values = np.asarray(values, dtype=float)
    out = np.empty_like(values)
    for j, is_max in enumerate(maximize):
        out[:, j] = 1.0 - values[:, j] / scale[j] if is_max else values[:, j] / scale[j]
    return out


# ---- a study's front ---------------------------------------------------------------------------------

def trial_row(trial: optuna.trial.FrozenTrial) -> Row:
    """A trial as a row of the front table: number, exit heads, the registry's columns, genotype."""
    figures = Metrics.from_attrs(trial.user_attrs)
    # a trial with exits records an exit rate per head, the main head last
    row: Row = {"trial": trial.number, "exits": len(figures.exit_rates or [None]) - 1}
    row.update({k: v for k, v in figures.values().items() if k in COLUMNS})
    row[attrs.GENOTYPE] = trial.user_attrs.get(attrs.GENOTYPE, "")
    return row


def budgets_of(study: optuna.Study) -> tuple[Budget, ...]:
    """The budgets of the study's latest run (none for a study made before budgets)."""
    from .config import budgets_from

    stored = study.user_attrs.get(attrs.CONFIG) or {}
    return budgets_from({k: stored[k] for k in BUDGETS if k in stored}, f"study {study.study_name!r}").get(
        "budgets", ())


def candidates(study: optuna.Study, budgets: tuple[Budget, ...] | None = None) -> list[optuna.trial.FrozenTrial]:
    """The trained trials within ``budgets`` (default: the latest run's): what a front is made of.
    A budget tightened since a trial was trained leaves it out."""
    budgets = budgets_of(study) if budgets is None else budgets
    trained = attrs.trained(study.get_trials(deepcopy=False, states=(Complete,)))
    if not budgets:
        return trained
    return [t for t in trained if over_budget(Metrics.from_attrs(t.user_attrs), budgets) is None]


def best_trials(study: optuna.Study, budgets: tuple[Budget, ...] | None = None) -> list[optuna.trial.FrozenTrial]:
    """The non-dominated trials among ``candidates``."""
    members = candidates(study, budgets)
    if not members:
        return []
    sign = np.array([-1.0 if d == Maximize else 1.0 for d in study.directions])
    return [members[i] for i in nondominated_rows(np.array([t.values for t in members]) * sign)]


def front_trials(study: optuna.Study, budgets: tuple[Budget, ...] | None = None) -> list[optuna.trial.FrozenTrial]:
    """Front members (``best_trials``), most accurate first; a duplicate genotype appears once."""
    def key(t: optuna.trial.FrozenTrial) -> tuple[float, int]:
        return -(Metrics.from_attrs(t.user_attrs).accuracy or 0.0), t.number

    members, seen = [], set()
    for t in sorted(best_trials(study, budgets), key=key):
        genotype = t.user_attrs.get(attrs.GENOTYPE)
        if genotype in seen:
            continue
        seen.add(genotype)
        members.append(t)
    return members


def front_rows(study: optuna.Study) -> list[Row]:
    return [trial_row(t) for t in front_trials(study)]


def rejected_count(study: optuna.Study) -> int:
    """Candidates rejected over a budget (never trained)."""
    return sum(attrs.rejected(t) for t in study.get_trials(deepcopy=False, states=(Complete,)))


def study_hypervolume(study: optuna.Study) -> float:
    """Normalised hypervolume of the study's front (0.0 while it has no trained trial within budget)."""
    complete = candidates(study)
    if not complete:
        return 0.0
    scale = np.max([t.values for t in complete], axis=0)
    scale[scale <= 0] = 1.0
    maximize = [d == Maximize for d in study.directions]
    names = study.metric_names or []
    for j, name in enumerate(names):  # a fraction's loss is 1 - it; a rate's (throughput) 1 - its share of the best
        if maximize[j] and name in REGISTRY and REGISTRY[name].style == "fraction":
            scale[j] = 1.0
    return hypervolume(normalised_losses(np.array([t.values for t in best_trials(study)]), maximize, scale))


# ---- its plot ----------------------------------------------------------------------------------------

def _plain_log_ticks(axis: Axis, lo: float, hi: float) -> None:
    """Ticks of a log axis labelled as plain numbers (0.2, 0.5, 1, 2), not as powers of ten: at
    1-2-5 steps, or at every digit when the range spans less than that gives three of."""
    decades = range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1)
    for steps in ((1, 2, 5), tuple(range(1, 10))):
        ticks = [m * 10.0 ** e for e in decades for m in steps if lo <= m * 10.0 ** e <= hi]
        if len(ticks) >= 3:
            break
    axis.set_ticks(ticks, labels=[f"{t:.6g}" for t in ticks])
    axis.set_ticks([], minor=True)


def _scale(name: str) -> tuple[float, str]:
    """Plot a metric in the unit tables show it in: millions for counts, as is otherwise."""
    metric = REGISTRY.get(name)
    if metric is not None and metric.style == "millions":
        return 1e-6, f"{name} (M)"
    return 1.0, name


def front_figure(study: optuna.Study, front: set[int]) -> Figure:
    """Every complete trial (grey) and the front members (red, numbered): one panel per cost
    objective against accuracy (or against the first objective when accuracy is not one)."""
    from matplotlib.figure import Figure  # no pyplot: no global backend, renders with Agg

    names = study.metric_names or [f"objective {i}" for i in range(len(study.directions))]
    complete = attrs.trained(study.get_trials(deepcopy=False, states=(Complete,)))
    maximized = [i for i, d in enumerate(study.directions) if d == Maximize]
    y = maximized[0] if maximized else 0
    xs: list[int | None] = [j for j in range(len(names)) if j != y] or [None]  # one objective: per trial
    fig = Figure(figsize=(5 * len(xs), 4), layout="constrained")
    y_scale, y_label = _scale(names[y])
    for panel, x in enumerate(xs, 1):
        ax = fig.add_subplot(1, len(xs), panel)
        x_scale, x_label = (1.0, "trial") if x is None else _scale(names[x])
        for on_front, color, size in ((False, "0.7", 12), (True, "tab:red", 24)):
            members = [t for t in complete if (t.number in front) == on_front]
            px = [t.number if x is None else t.values[x] * x_scale for t in members]
            py = [t.values[y] * y_scale for t in members]
            ax.scatter(px, py, c=color, s=size)
            if on_front:
                for t, a, b in zip(members, px, py):
                    ax.annotate(str(t.number), (a, b), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.set_xlabel(x_label)
        ax.set_ylabel(y_label)
        if x is not None and complete and min(t.values[x] for t in complete) > 0:
            ax.set_xscale("log")  # costs span orders of magnitude
            values = [t.values[x] * x_scale for t in complete]
            _plain_log_ticks(ax.xaxis, min(values), max(values))
        ax.grid(alpha=0.3)
    fig.suptitle(f"study {study.study_name}: {len(complete)} trials, front in red")
    return fig
