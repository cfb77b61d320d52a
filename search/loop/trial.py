"""One trial apart from the loop (as Optuna's ``_optimize.py`` keeps ``_run_trial`` apart from the
loop): its network sampled, and what its evaluation gave told to the study."""
from __future__ import annotations

import optuna

from hwnas.evaluators import Evaluation
from hwnas.evaluators.budgets import Budget, over_budget
from hwnas.evaluators.metrics import LATENCY_PREDICTION, Metrics
from hwnas.spaces import Space

from .. import attrs
from ..errors import RunFailure
from ..executors import Outcome
from ..recovery import abandon
from ..weights import save_weights, weights_path


def sample(trial: optuna.trial.Trial, space: Space, evaluation: Evaluation) -> str:
    """Ask ``trial`` for its network; its text is kept on the trial (what the study, MLflow and
    export read). A trial killed before this returns holds no genotype: it is not retried."""
    genotype = str(space.sample(trial, evaluation.input_shape))
    trial.set_user_attr(attrs.GENOTYPE, genotype)
    return genotype


def _store(study: optuna.Study, trial: optuna.trial.Trial, metrics: Metrics, budgets: tuple[Budget, ...],
           summary: str | None) -> None:
    """Each figure once (a user attribute per metric) and, under budgets, Optuna's constraint
    values (<= 0 within), so its samplers learn where the budgets lie. A cost the sampler predicted
    (``--predict-latency``) gets its prediction's error."""
    p = LATENCY_PREDICTION
    # the sampler wrote it to the storage while asking (``trial.user_attrs`` is the trial as asked)
    predicted = study.get_trials(deepcopy=False)[trial.number].user_attrs.get(p.predicted)
    measured = metrics.values().get(p.metric)
    if isinstance(predicted, float) and isinstance(measured, float):
        metrics = metrics.merged(p.error_of(predicted, measured))
    for name, value in metrics.values().items():
        trial.set_user_attr(name, value)
    for budget in budgets:
        trial.set_constraint(budget.key, budget.excess(metrics))
    if summary:
        trial.set_user_attr(attrs.MODEL_SUMMARY, summary)


def tell_complete(study: optuna.Study, trial: optuna.trial.Trial, metrics: Metrics, objectives: tuple[str, ...],
                  summary: str | None = None, budgets: tuple[Budget, ...] = ()) -> optuna.trial.FrozenTrial:
    """Store the figures, then tell the objectives' values."""
    _store(study, trial, metrics, budgets, summary)
    return study.tell(trial, [metrics.value(name) for name in objectives])


def tell_rejected(study: optuna.Study, trial: optuna.trial.Trial, metrics: Metrics, reason: str,
                  objectives: tuple[str, ...], budgets: tuple[Budget, ...],
                  summary: str | None = None) -> optuna.trial.FrozenTrial:
    """A candidate over a budget, not trained: its cheap figures, the reason and its (violated)
    constraints, told COMPLETE with stand-in values for what training would have measured."""
    cheap = metrics.cheap()
    _store(study, trial, cheap, budgets, summary)
    trial.set_user_attr(attrs.REJECTED, reason)
    return study.tell(trial, [cheap.rejected_value(name) for name in objectives])


def record_rung(trial: optuna.trial.Trial, metrics: Metrics) -> None:
    """A trial paused at a rung: its cheap figures and accuracy per epoch so far, where the rung
    decisions read them (``early_stopping.MOASHA.peers``)."""
    for name, value in metrics.cheap().merged(Metrics(epoch_accuracy=metrics.epoch_accuracy)).values().items():
        trial.set_user_attr(name, value)


def tell_stopped(study: optuna.Study, trial: optuna.trial.Trial, metrics: Metrics, budgets: tuple[Budget, ...],
                 summary: str | None = None) -> optuna.trial.FrozenTrial:
    """A trial early stopping stopped at a rung: what it reached (its cheap figures, the accuracy
    per epoch, the rung, the training time), told PRUNED: never on the front, never retrained."""
    # a pause's figures are those already (evaluators.trial._train): the rung is added
    _store(study, trial, metrics.merged(Metrics(stopped_epoch=len(metrics.epoch_accuracy or ()))), budgets, summary)
    return study.tell(trial, state=optuna.trial.TrialState.PRUNED)


def tell_duplicate(study: optuna.Study, trial: optuna.trial.Trial, original: optuna.trial.FrozenTrial,
                   objectives: tuple[str, ...], budgets: tuple[Budget, ...] = ()) -> optuna.trial.FrozenTrial:
    """An equal genotype was trained already: its figures are this trial's too (unless they break
    a budget tightened since); stopped early, this one is stopped too."""
    trial.set_user_attr(attrs.DUPLICATE_OF, original.user_attrs.get(attrs.DUPLICATE_OF, original.number))
    metrics, summary = Metrics.from_attrs(original.user_attrs), original.user_attrs.get(attrs.MODEL_SUMMARY)
    reason = over_budget(metrics, budgets)
    if reason:
        return tell_rejected(study, trial, metrics, reason, objectives, budgets, summary)
    if original.state == optuna.trial.TrialState.PRUNED:  # the same network and seed would stop the same way
        return tell_stopped(study, trial, metrics, budgets, summary)
    return tell_complete(study, trial, metrics, objectives, summary, budgets)


def tell_outcome(study: optuna.Study, trial: optuna.trial.Trial, outcome: Outcome, objectives: tuple[str, ...],
                 directory: str) -> optuna.trial.FrozenTrial:
    """Tell what the executor handed back. The weights are on disk before the trial is COMPLETE."""
    trial.set_user_attr(attrs.DEVICE, outcome.spec.device)
    if outcome.node:
        trial.set_user_attr(attrs.TRAIN_NODE, outcome.node)
    if outcome.retries:
        trial.set_user_attr(attrs.RETRIES, outcome.retries)
    if outcome.result is None:
        trial.set_user_attr(attrs.FAIL_REASON, outcome.error)
        return study.tell(trial, state=optuna.trial.TrialState.FAIL)
    if outcome.result.rejected:
        return tell_rejected(study, trial, outcome.result.metrics, outcome.result.rejected, objectives,
                             outcome.spec.budgets, outcome.result.summary)
    if outcome.result.weights is not None:
        try:
            save_weights(directory, study.study_name, trial.number, outcome.result.weights)
        except OSError as e:  # a full disk: the trial is not COMPLETE without its weights
            where = weights_path(directory, study.study_name, trial.number)
            abandon(study, trial, f"its weights could not be written ({e.strerror or e})")
            raise RunFailure(f"cannot write {where}: {e.strerror or e}; trial {trial.number} was failed and "
                             f"queued to run again, the study is consistent: free space and run the same "
                             f"command again") from None
    return tell_complete(study, trial, outcome.result.metrics, objectives, outcome.result.summary,
                         outcome.spec.budgets)
