"""Names of the user attributes this package keeps on trials and studies (metrics aside: those
are named by ``hwnas.evaluators.metrics``). Readers of a study (MLflow, export, Optuna's dashboard)
find the same names here."""
from __future__ import annotations

import optuna

# trial attributes
GENOTYPE = "genotype"  # the sampled network's text form
OWNER = "owner"  # host:pid:start of the search process running it (search.recovery)
DUPLICATE_OF = "duplicate_of"  # an equal genotype's trial whose figures it repeats (not trained again)
DEVICE = "device"  # where it was trained and timed
TRAIN_NODE = "train_node"  # the machine it ran on (a Ray node: host/node id); metric latency_node: where timed
RETRIES = "retries"  # times it ran again because its worker died
FAIL_REASON = "fail_reason"  # why it failed
RETRY_OF = "retry_of"  # the abandoned trial whose parameters it runs again
SCREENED = "screened"  # distinct candidates the hybrid sampler had screened when it chose this one
MODEL_SUMMARY = "model_summary"  # the built network, printable (params per part and its modules)
ABANDONED = "abandoned: "  # how the reason of a trial abandoned unfinished begins
REJECTED = "rejected"  # why a candidate was not trained: the budgets it breaks (COMPLETE, infeasible)

# study attributes
IDENTITY = "identity"  # what must stay the same for trials to belong to the study
CONFIG = "config"  # the configuration it was last run with
SPACE = "space"  # a cell space's file as the study began (canonical YAML): a changed file is refused
MLFLOW_UID = "mlflow_uid"  # tells apart studies that share a name in one MLflow store


def rejected(trial: optuna.trial.FrozenTrial) -> bool:
    """Told COMPLETE with its cheap figures only, over a budget: never trained, never on the front,
    not counted toward --trials. (COMPLETE, so Optuna's samplers learn its constraint values.)"""
    return REJECTED in trial.user_attrs


def trained(trials: list[optuna.trial.FrozenTrial]) -> list[optuna.trial.FrozenTrial]:
    """The COMPLETE trials that were trained (or looked up), not rejected over a budget."""
    return [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE and not rejected(t)]


def ended(trials: list[optuna.trial.FrozenTrial]) -> list[optuna.trial.FrozenTrial]:
    """The trials that count toward --trials: trained to the end (``trained``), or stopped early
    at a rung (PRUNED: judged, and never retrained)."""
    return trained(trials) + [t for t in trials if t.state == optuna.trial.TrialState.PRUNED]


def abandoned(trial: optuna.trial.FrozenTrial) -> bool:
    """Failed because its search process stopped or died, not because of its network."""
    return str(trial.user_attrs.get(FAIL_REASON, "")).startswith(ABANDONED)


def spans(trials: list[optuna.trial.FrozenTrial]) -> list[tuple[float, float]]:
    """Each trial's time in flight as (start, end) in seconds since the epoch: from its ask (the
    sampler's screening included) to its tell. Trials without both times are left out."""
    return [(t.datetime_start.timestamp(), t.datetime_complete.timestamp()) for t in trials
            if t.datetime_start and t.datetime_complete]
