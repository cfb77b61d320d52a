"""A study's Pareto front: its members as rows, how good it is (normalised hypervolume) and what it
looks like (a plot).

Objectives are normalised as in the NAS-Bench-201 convention of REFERENCE.md: a maximised
objective (accuracy, in [0, 1]) becomes the loss ``1 - value``; a minimised cost becomes
``cost / its largest value among the study's complete trials``. The reference point is 1 on
every axis, so the hypervolume lies in [0, 1] and grows as the front improves.
"""
from __future__ import annotations

import numpy as np
import optuna
from optuna._hypervolume import compute_hypervolume  # Optuna's exact WFG; no public name for it

Complete = optuna.trial.TrialState.COMPLETE
Maximize = optuna.study.StudyDirection.MAXIMIZE

METRIC_COLUMNS = ("accuracy", "accuracy_full", "test_accuracy", "latency_ms", "macs", "params",
                  "expected_macs", "expected_latency_ms", "exit_rates")


def trial_row(trial: optuna.trial.FrozenTrial) -> dict:
    attrs = trial.user_attrs
    # early-exit heads: a trial with exits records an exit rate per head, the main head last
    row = {"trial": trial.number, "exits": len(attrs.get("exit_rates", [None])) - 1}
    row.update({m: attrs[m] for m in METRIC_COLUMNS if m in attrs})
    row["genotype"] = attrs.get("genotype", "")
    return row


def front_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Front members (``study.best_trials``), most accurate first; a duplicate genotype appears once."""
    members, seen = [], set()
    for t in sorted(study.best_trials, key=lambda t: (-t.user_attrs.get("accuracy", 0.0), t.number)):
        if t.user_attrs.get("genotype") in seen:
            continue
        seen.add(t.user_attrs.get("genotype"))
        members.append(t)
    return members


def front_rows(study: optuna.Study) -> list[dict]:
    return [trial_row(t) for t in front_trials(study)]


def normalised_losses(values: np.ndarray, maximize: list[bool], scale: np.ndarray) -> np.ndarray:
    """Rows of objective values -> losses in [0, 1]: ``1 - v`` where maximised, ``v / scale`` where not."""
    values = np.asarray(values, dtype=float)
    out = np.empty_like(values)
    for j, is_max in enumerate(maximize):
        out[:, j] = 1.0 - values[:, j] if is_max else values[:, j] / scale[j]
    return out


def hypervolume(losses: np.ndarray) -> float:
    """Volume dominated by ``losses`` (rows in [0, 1]) up to the reference point (1, ..., 1)."""
    losses = np.asarray(losses, dtype=float)
    losses = losses[np.all(losses < 1.0, axis=1)]  # a point on or past the reference adds nothing
    if len(losses) == 0:
        return 0.0
    return float(compute_hypervolume(losses, np.ones(losses.shape[1])))


def study_hypervolume(study: optuna.Study) -> float:
    """Normalised hypervolume of the study's front (0.0 while it has no complete trial)."""
    complete = study.get_trials(deepcopy=False, states=(Complete,))
    if not complete:
        return 0.0
    scale = np.max([t.values for t in complete], axis=0)
    scale[scale <= 0] = 1.0
    maximize = [d == Maximize for d in study.directions]
    return hypervolume(normalised_losses([t.values for t in study.best_trials], maximize, scale))


def front_figure(study: optuna.Study, front: set[int]):
    """Every complete trial (grey) and the front members (red, numbered): one panel per cost
    objective against accuracy (or against the first objective when accuracy is not one)."""
    from matplotlib.figure import Figure  # no pyplot: no global backend, renders with Agg

    names = study.metric_names or [f"objective {i}" for i in range(len(study.directions))]
    complete = study.get_trials(deepcopy=False, states=(Complete,))
    y = names.index("accuracy") if "accuracy" in names else 0
    xs = [j for j in range(len(names)) if j != y] or [None]  # one objective: plot it per trial
    fig = Figure(figsize=(5 * len(xs), 4), layout="constrained")
    for panel, x in enumerate(xs, 1):
        ax = fig.add_subplot(1, len(xs), panel)
        for trials, style in (([t for t in complete if t.number not in front], dict(c="0.7", s=12)),
                              ([t for t in complete if t.number in front], dict(c="tab:red", s=24))):
            px = [t.number if x is None else t.values[x] for t in trials]
            py = [t.values[y] for t in trials]
            ax.scatter(px, py, **style)
            if style["c"] == "tab:red":
                for t, a, b in zip(trials, px, py):
                    ax.annotate(str(t.number), (a, b), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.set_xlabel("trial" if x is None else names[x])
        ax.set_ylabel(names[y])
        if x is not None and min(t.values[x] for t in complete) > 0:
            ax.set_xscale("log")  # costs span orders of magnitude
        ax.grid(alpha=0.3)
    fig.suptitle(f"study {study.study_name}: {len(complete)} trials, front in red")
    return fig
