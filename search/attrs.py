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
RETRIES = "retries"  # times it ran again because its worker died
FAIL_REASON = "fail_reason"  # why it failed
RETRY_OF = "retry_of"  # the abandoned trial whose parameters it runs again
SCREENED = "screened"  # distinct candidates the hybrid sampler had screened when it chose this one
MODEL_SUMMARY = "model_summary"  # the built network, printable (params per part and its modules)
ABANDONED = "abandoned: "  # how the reason of a trial abandoned unfinished begins

# study attributes
IDENTITY = "identity"  # what must stay the same for trials to belong to the study
CONFIG = "config"  # the configuration it was last run with
MLFLOW_UID = "mlflow_uid"  # tells apart studies that share a name in one MLflow store


def abandoned(trial: optuna.trial.FrozenTrial) -> bool:
    """Failed because its search process stopped or died, not because of its network."""
    return str(trial.user_attrs.get(FAIL_REASON, "")).startswith(ABANDONED)
