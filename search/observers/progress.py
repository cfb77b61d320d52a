"""The progress line: one line per told trial on stderr, with the count, metrics, front size,
elapsed time and ETA."""
from __future__ import annotations

import math
import sys
import time
from typing import TextIO

import optuna

from hwnas.evaluators.metrics import REGISTRY, Metrics

from .. import attrs
from ..attrs import FAIL_REASON
from ..pareto import best_trials, rejected_count

Complete, Pruned = optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def describe(m: Metrics) -> str:
    """A trial's figures in a few words: accuracy, latency, MACs and parameters, exits."""
    parts = []
    if m.accuracy is not None:
        parts.append(f"acc {m.accuracy:.4f}")
    if m.latency_ms is not None:
        parts.append(f"lat {m.latency_ms:.3f} ms")
    parts += [f"{name} {REGISTRY[name].show(v)}" for name, v in Metrics(macs=m.macs, params=m.params).values().items()]
    text = "  ".join(parts)
    if m.exit_rates is not None and m.accuracy_full is not None and m.expected_macs is not None:
        text += (f"  exits: full acc {m.accuracy_full:.4f}, expected macs {m.expected_macs / 1e6:.3f} M, "
                 f"rates {'/'.join(f'{r:.2f}' for r in m.exit_rates)}")
    return text


class Progress:
    """An observer: ``[done/target] trial N  <figures or FAILED: reason>  | front F | elapsed eta``."""

    def __init__(self, study: optuna.Study, target: int, stream: TextIO | None = None) -> None:
        self.target, self.stream = target, stream
        self.start_count = self._done(study)
        self.t0 = time.perf_counter()

    @staticmethod
    def _done(study: optuna.Study) -> int:
        return len(attrs.ended(study.get_trials(deepcopy=False, states=(Complete, Pruned))))

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        done = self._done(study)
        if attrs.rejected(trial):
            outcome = f"over budget, not trained: {trial.user_attrs[attrs.REJECTED]}"
        elif trial.state == Complete:
            outcome = describe(Metrics.from_attrs(trial.user_attrs))
        elif trial.state == Pruned:
            m = Metrics.from_attrs(trial.user_attrs)
            reached = m.merged(Metrics(accuracy=m.epoch_accuracy[-1])) if m.epoch_accuracy else m
            outcome = f"stopped at epoch {m.stopped_epoch}, dominated at its rung: {describe(reached)}"
        elif FAIL_REASON in trial.user_attrs:
            outcome = f"FAILED: {trial.user_attrs[FAIL_REASON]}"
        else:
            outcome = trial.state.name
        elapsed = time.perf_counter() - self.t0
        new = done - self.start_count
        eta = elapsed / new * (self.target - done) if new > 0 else math.nan
        width = len(str(self.target))
        over = rejected_count(study)
        budget = f" | over budget {over}" if over else ""
        front = len(best_trials(study))
        print(f"[{done:>{width}}/{self.target}] trial {trial.number:<4} {outcome}  | front {front}{budget} | "
              f"elapsed {_clock(elapsed)} eta {_clock(eta) if math.isfinite(eta) else '?'}",
              file=self.stream or sys.stderr, flush=True)

    def close(self, study: optuna.Study, completed: bool) -> None:
        pass
