"""Before a budgeted search starts: is any network of the space within its budgets? A bounded
random search on the cheap figures (no training) finds one, or names the smallest costs it saw,
before anything is written."""
from __future__ import annotations

import sys

import numpy as np

from hwnas.evaluators import Evaluation
from hwnas.evaluators.budgets import Budget, Closest, over_budget
from hwnas.evaluators.metrics import Metrics
from hwnas.spaces import Space

from ..errors import UsageError

CANDIDATES = 200  # random networks screened (a trained space: about 20-50 ms each)
TABLE_CANDIDATES = 5_000  # a table's rows are lookups


def check_feasible(space: Space, evaluation: Evaluation, budgets: tuple[Budget, ...], seed: int) -> Metrics:
    """The first random candidate within ``budgets`` (its cheap figures); UsageError naming the
    best figure seen for each budget when none of a bounded number is."""
    rng = np.random.default_rng(seed)
    choices = space.choices()
    limit = TABLE_CANDIDATES if evaluation.local else CANDIDATES
    closest = Closest(budgets)
    for _ in range(limit):
        params = {n: o[rng.integers(len(o))] for n, o in choices.items()}
        try:
            genotype = str(space.decode(params, evaluation.input_shape))
        except Exception:  # a broken network is no candidate (the sampler skips it the same way)
            continue
        (figures,) = evaluation.screen([genotype])
        if figures is None:
            continue
        if over_budget(figures, budgets) is None:
            return figures
        closest.see(figures)
    raise UsageError(f"no network of space {space.name} meets the budgets among {limit} random candidates: "
                     f"{closest}; loosen a budget")


def announce(budgets: tuple[Budget, ...]) -> None:
    print(f"budgets: {', '.join(f'{b.flag} {b.limit:g}' for b in budgets)}: candidates over them are not trained",
          file=sys.stderr)
