"""The Pareto front of a study, as rows of plain values."""
from __future__ import annotations

import optuna

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
