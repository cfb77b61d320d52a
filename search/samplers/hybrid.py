"""The hybrid sampler: screen many candidates on what is known before training, train the one
whose expected hypervolume improvement is highest.

Only accuracy costs a trial; latency, MACs and parameters are known before training (a table
lookup, or building the network and timing it briefly). So for each ask the sampler

1. gathers candidates: every cell when the space is small enough to list (NAS-Bench-201:
   15,625), else ``pool`` (16) fresh ones, half random, half one or two choices away from a front
   member;
2. keeps one candidate per network (the space's ``canonical`` form: cells that compute the same
   function are one candidate, the one with the lowest cheap cost) and drops networks already
   tried and networks over a budget (``--max-latency-ms`` and the others: never trained);
3. predicts each one's log error with a Gaussian process over the space's features and the logs
   of its cheap metrics;
4. picks the highest expected hypervolume improvement (EHVI). With the cheap objectives known
   exactly and the error log-normal, EHVI is an exact sum over the front's steps.

The first ``startup`` asks pick distinct networks at random. Objectives are minimised after
normalising: error = 1 - accuracy, each cheap cost divided by the largest value seen (a cheap
rate, throughput: 1 - its share of the largest);
the reference point is 1 in every objective.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalChoiceType, CategoricalDistribution
from optuna.trial import FrozenTrial, TrialState
from scipy.linalg import cho_solve, solve_triangular
from scipy.special import ndtr

from hwnas.evaluators.budgets import Budget
from hwnas.evaluators.metrics import LATENCY_PREDICTION, Metrics, Prediction

from .. import attrs
from .._private import set_trial_user_attr
from ..pareto import improvement, nondominated
from .latency_model import MIN_MEASURED, LinearLatency

if TYPE_CHECKING:
    from hwnas.evaluators import Evaluation
    from hwnas.spaces import Architecture, Space

ENUMERATE_LIMIT = 20_000  # spaces with at most this many choice combinations are screened whole
EXTRA_POOLS = 20  # more pools drawn when none of a pool's candidates is within budget
SEEN = (TrialState.COMPLETE, TrialState.RUNNING, TrialState.FAIL, TrialState.PRUNED)


@dataclass(frozen=True)
class Candidate:
    key: str  # equal keys: the same network
    features: tuple[float, ...]  # what the surrogate model reads
    cheap: Metrics  # the figures known before training
    cost: tuple[float, ...] = ()  # what a latency model reads (--predict-latency): cost features, MACs, params

    @staticmethod
    def of(key: str, features: list[float], cheap: Metrics, cost_features: list[float]) -> Candidate:
        counted = [float(v) for v in (cheap.macs, cheap.params) if v is not None]
        return Candidate(key, tuple(features), cheap, (*cost_features, *counted))


@dataclass(frozen=True)
class Screen:
    """What the sampler may look at before it spends a trial."""
    choices: dict[str, tuple]  # parameter name -> options, as the space asks them
    # candidates' params -> their candidates, None for a broken network; described together, so
    # their timings share one quiet phase (evaluators.trial.screen)
    describe: Callable[[list[dict]], list[Candidate | None]]
    budgets: tuple[Budget, ...] = ()  # candidates over one are not proposed
    # --predict-latency: the device's latency is predicted by a model fitted on the trials timed
    # there so far (the screen's own figure stands in until it has MIN_MEASURED of them)
    predict: Prediction | None = None


class _GP:
    """Exact Gaussian-process regression with an RBF kernel on standardised targets; lengthscale
    and noise are chosen from a small grid by marginal likelihood."""

    GRID = tuple(itertools.product((0.5, 1.0, 2.0, 4.0, 8.0), (1e-3, 1e-2, 1e-1)))

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        self.x, self.mean, self.scale = x, y.mean(), y.std() + 1e-12
        yn = (y - self.mean) / self.scale
        sq = (x * x).sum(1)
        d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0)
        best = -math.inf
        for lengthscale, noise in self.GRID:
            k = np.exp(-d2 / (2 * lengthscale ** 2)) + noise * np.eye(len(x))
            try:
                chol = np.linalg.cholesky(k)
            except np.linalg.LinAlgError:
                continue
            alpha = cho_solve((chol, True), yn)
            ll = -0.5 * yn @ alpha - np.log(np.diag(chol)).sum()
            if ll > best:
                best, self.lengthscale, self.chol, self.alpha = ll, lengthscale, chol, alpha

    def predict(self, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # float32 and in place: this is the sampler's largest cost (every candidate x every trial)
        x = self.x.astype(np.float32)
        ks = xs.astype(np.float32) @ x.T
        ks *= 2
        ks -= (xs * xs).sum(1, dtype=np.float32)[:, None]
        ks -= (x * x).sum(1)[None, :]
        np.minimum(ks, 0, out=ks)
        ks *= 1 / (2 * self.lengthscale ** 2)
        np.exp(ks, out=ks)
        v = solve_triangular(self.chol.astype(np.float32), ks.T, lower=True, check_finite=False)
        var = np.maximum(1 - np.einsum("ij,ij->j", v, v), 1e-12)
        return (ks @ self.alpha.astype(np.float32)) * self.scale + self.mean, np.sqrt(var) * self.scale


def expected_improvement(mu: np.ndarray, sd: np.ndarray, cheap: np.ndarray, front: np.ndarray) -> np.ndarray:
    """EHVI of candidates whose log error is N(mu, sd^2) and whose cheap objectives (``cheap``
    rows) are exact, against ``front`` (error first). Slicing along the error as in
    ``improvement``, a slice [lo, hi) contributes E[its width] = G(hi) - G(lo), G the integral of
    P(error <= x): x Phi(z) - exp(mu + sd^2 / 2) Phi(z - sd), z = (log x - mu) / sd."""
    steps = np.unique(np.clip(front[:, 0], 0, 1))
    bounds = np.concatenate([[0.0], steps, [1.0]])
    with np.errstate(divide="ignore"):
        z = (np.log(bounds)[None, :] - mu[:, None]) / sd[:, None]
    g = bounds[None, :] * ndtr(z) - np.exp(mu + sd * sd / 2)[:, None] * ndtr(z - sd[:, None])
    widths = np.diff(g, axis=1)
    return sum(widths[:, j] * improvement(cheap, front[front[:, 0] <= lo, 1:])
               for j, lo in enumerate(bounds[:-1]))


@dataclass(frozen=True)
class _Pool:
    """Candidates as arrays: one row each."""
    params: list[dict]
    keys: list[str]
    features: np.ndarray
    cheap: np.ndarray  # raw cheap metrics, columns in ``metrics`` order
    metrics: tuple[str, ...]
    cost: np.ndarray  # Candidate.cost

    @staticmethod
    def of(pairs: list[tuple[dict, Candidate]]) -> _Pool:
        if not pairs:
            return _Pool([], [], np.zeros((0, 0)), np.zeros((0, 0)), (), np.zeros((0, 0)))
        metrics = tuple(sorted(pairs[0][1].cheap.values()))
        n = len(pairs)
        return _Pool([p for p, _ in pairs], [c.key for _, c in pairs],
                     np.array([c.features for _, c in pairs], float).reshape(n, -1),
                     np.array([[c.cheap.value(m) for m in metrics] for _, c in pairs], float).reshape(n, -1),
                     metrics, np.array([c.cost for _, c in pairs], float).reshape(n, -1))

    def take(self, rows: list[int]) -> _Pool:
        return _Pool([self.params[i] for i in rows], [self.keys[i] for i in rows], self.features[rows],
                     self.cheap[rows], self.metrics, self.cost[rows])

    def with_column(self, metric: str, values: np.ndarray) -> _Pool:
        """The pool with one cheap metric's values replaced (a model's predictions)."""
        cheap = self.cheap.copy()
        cheap[:, self.metrics.index(metric)] = values
        return replace(self, cheap=cheap)


class HybridSampler(optuna.samplers.BaseSampler):
    def __init__(self, screen: Screen, seed: int | None = None, startup: int = 10, pool: int = 16) -> None:
        self.screen, self.startup, self.pool = screen, startup, pool
        self.rng = np.random.default_rng(seed)
        self.space: dict[str, BaseDistribution] = {
            n: CategoricalDistribution(list(o)) for n, o in screen.choices.items()}
        self.described: dict[tuple, Candidate | None] = {}  # params -> candidate (None: broken)
        self.listable = math.prod(len(o) for o in screen.choices.values()) <= ENUMERATE_LIMIT
        self.listed: _Pool | None = None  # the whole space, one row per network, when listable
        self.screened = 0  # distinct candidates whose cheap metrics were looked up

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return self.space

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: CategoricalDistribution,  # type: ignore[override]  # all categorical
                           ) -> CategoricalChoiceType:
        return param_distribution.choices[self.rng.integers(len(param_distribution.choices))]

    def reseed_rng(self) -> None:
        self.rng = np.random.default_rng()

    def _describe(self, params: list[dict]) -> list[Candidate | None]:
        """Each one's candidate (None: a network that cannot be built, never proposed), screened
        once: the new ones together."""
        keys = [tuple(p[n] for n in self.screen.choices) for p in params]
        new = {k: p for k, p in zip(keys, params) if k not in self.described}
        if new:
            self.described.update(zip(new, self.screen.describe(list(new.values()))))
        self.screened += len(new)
        return [self.described[k] for k in keys]

    def _random_params(self) -> dict:
        return {n: o[self.rng.integers(len(o))] for n, o in self.screen.choices.items()}

    def _mutate(self, params: dict) -> dict:
        out = dict(params)
        for name in self.rng.choice(list(self.screen.choices), size=self.rng.integers(1, 3), replace=False):
            options = self.screen.choices[name]
            out[name] = options[self.rng.integers(len(options))]
        return out

    def _networks(self, params: list[dict], names: list[str]) -> _Pool:
        """One row per network among ``params``: the candidate with the lowest cheap cost."""
        best: dict[str, tuple[dict, Candidate]] = {}
        for p, c in zip(params, self._describe(params)):
            if c is not None and (c.key not in best or self._cost(c, names) < self._cost(best[c.key][1], names)):
                best[c.key] = (p, c)
        return _Pool.of(list(best.values()))

    @staticmethod
    def _cost(c: Candidate, names: list[str]) -> tuple:
        known = c.cheap.values()
        return tuple(known[n] for n in names if n in known)  # compared in objective order

    def _pool(self, names: list[str], history: list[dict], started: bool) -> _Pool:
        """Candidates to screen: ``history`` (the finished trials' parameters) seeds the mutations;
        before the model has ``started``, one random network."""
        if self.listable:
            if self.listed is None:
                combos = itertools.product(*self.screen.choices.values())
                self.listed = self._networks([dict(zip(self.screen.choices, c)) for c in combos], names)
            return self.listed
        if not started:
            return self._networks([self._random_params()], names)
        parents = [history[i] for i in self.rng.integers(len(history), size=self.pool // 2)]
        fresh = [self._random_params() for _ in range(self.pool - len(parents))]
        return self._networks([self._mutate(p) for p in parents] + fresh, names)

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict:
        names = study.metric_names or [f"objective{i}" for i in range(len(study.directions))]
        trials = study.get_trials(deepcopy=False, states=SEEN)
        ours = [t for t in trials if t.params.keys() == self.space.keys()]
        described = list(zip(ours, self._describe([t.params for t in ours])))
        tried = {c.key for _, c in described if c is not None}
        # a rejected trial's values stand in for figures never measured: the model learns nothing from them
        done = [(t, c) for t, c in described
                if c is not None and t.state == TrialState.COMPLETE and not attrs.rejected(t)]
        # A trial stopped early (PRUNED) is never proposed again (``tried``) and counts toward the
        # random start-up, but its accuracy at the rung does not enter the model: measured, rung
        # accuracy ranked networks no better than chance after one epoch, and fed to the model it
        # made every region that early stopping had visited look bad (docs/early-stopping.md).
        stopped = sum(t.state == TrialState.PRUNED for t, _ in described)
        started = len(done) + stopped >= self.startup and len(done) >= 2
        model = self._latency_model(described)

        def screened(p: _Pool) -> _Pool:  # untried, with the model's predictions where there is one
            return self._predicted(p.take([i for i, k in enumerate(p.keys) if k not in tried]), model)

        pool = screened(self._pool(names, [t.params for t, _ in done], started))
        within = self._within(pool)
        for _ in range(EXTRA_POOLS if self.screen.budgets and not self.listable and not within.keys else 0):
            within = self._within(screened(self._networks([self._random_params() for _ in range(self.pool)], names)))
            if within.keys:
                break
        set_trial_user_attr(study, trial, attrs.SCREENED, self.screened)
        if not within.keys:  # nothing untried within budget: let the trial say so (rejected, counted)
            return pool.params[0] if pool.keys else self._random_params()
        pool = within
        p = self.screen.predict if model is not None else None  # the pool holds its predictions
        chosen = (int(np.argmax(self._scores(study, names, done, pool, p.metric if p else None))) if started
                  else int(self.rng.integers(len(pool.keys))))
        if p is not None:  # what the model said, to be checked against the device
            set_trial_user_attr(study, trial, p.predicted, float(pool.cheap[chosen, pool.metrics.index(p.metric)]))
        return pool.params[chosen]

    def _latency_model(self, described: list) -> LinearLatency | None:
        """With ``Screen.predict``: a model of the predicted cost fitted on every network measured
        so far (trained, stopped, rejected over a budget: all were timed), once there are enough."""
        p = self.screen.predict
        if p is None:
            return None
        rows: dict[str, tuple[tuple[float, ...], float]] = {}
        for t, c in described:
            value = t.user_attrs.get(p.metric)
            if c is not None and isinstance(value, (int, float)) and attrs.DUPLICATE_OF not in t.user_attrs:
                rows[c.key] = (c.cost, float(value))
        if len(rows) < MIN_MEASURED:
            return None
        x, y = zip(*rows.values())
        return LinearLatency(np.array(x, float), np.array(y, float))

    def _predicted(self, pool: _Pool, model: LinearLatency | None) -> _Pool:
        if model is None or not pool.keys or self.screen.predict is None:
            return pool
        return pool.with_column(self.screen.predict.metric, model.predict(pool.cost))

    def _within(self, pool: _Pool) -> _Pool:
        """The candidates of ``pool`` within the budgets (on predicted figures where predicted)."""
        if not self.screen.budgets:
            return pool
        within = np.ones(len(pool.keys), bool)
        for b in self.screen.budgets:
            within &= b.allows(pool.cheap[:, pool.metrics.index(b.metric)])
        return pool.take(np.flatnonzero(within).tolist())

    @staticmethod
    def _scores(study: optuna.Study, names: list[str], done: list, pool: _Pool, measured: str | None = None,
                ) -> np.ndarray:
        """EHVI of each of ``pool``; ``measured``: a cheap metric the pool holds predictions of,
        read for the finished trials as measured."""
        cheap_names = [n for n in names if n in pool.metrics]
        costly = [i for i, n in enumerate(names) if n not in pool.metrics]
        if len(costly) > 1:
            raise ValueError(f"the hybrid sampler models one objective not known before training; "
                             f"got {', '.join(names[i] for i in costly)}")
        seen = _Pool.of([(t.params, c) for t, c in done])
        if measured is not None and done:
            seen = seen.with_column(measured, np.array([float(t.user_attrs[measured]) for t, _ in done]))
        raw = np.vstack([seen.cheap, pool.cheap])
        columns = [pool.metrics.index(n) for n in cheap_names]
        cheap = raw[:, columns] / np.maximum(raw[:, columns].max(0), 1e-12)
        for k, name in enumerate(cheap_names):  # a maximised one (throughput): 1 - its share of the best
            if study.directions[names.index(name)] == optuna.study.StudyDirection.MAXIMIZE:
                cheap[:, k] = 1.0 - cheap[:, k]
        logs = np.log(np.maximum(raw, 1e-12))
        logs = (logs - logs.mean(0)) / (logs.std(0) + 1e-12)
        x = np.hstack([np.vstack([seen.features, pool.features]), logs])
        n = len(done)
        if not costly:  # everything is known: the score is the plain improvement
            front = nondominated(cheap[:n])
            return improvement(cheap[n:], front)
        i = costly[0]
        maximize = study.directions[i] == optuna.study.StudyDirection.MAXIMIZE
        err = np.clip([1 - t.values[i] if maximize else t.values[i] for t, _ in done], 1e-4, 1)
        # the model fits log error: good networks differ by fractions of a point, broken ones by tens
        mu, sd = _GP(x[:n], np.log(err)).predict(x[n:])
        front = nondominated(np.column_stack([err, cheap[:n]]))
        return expected_improvement(mu, sd, cheap[n:], front)


def screen_for(space: Space, evaluation: Evaluation, budgets: tuple[Budget, ...] = (),
               predict_latency: bool = False) -> Screen:
    """The screen of a space (its choices, canonical form, features) evaluated one way, under
    budgets; ``predict_latency``: latency predicted by a model of the measured ones."""
    def decode(params: dict) -> Architecture | None:
        try:
            return space.decode(params, evaluation.input_shape)
        except Exception:  # choices that make no network
            return None

    def candidate(params: dict, genotype: Architecture, figures: Metrics | None) -> Candidate | None:
        if figures is None:
            return None
        try:
            return Candidate.of(str(space.canonical(genotype)), space.features(params), figures,
                                space.cost_features(genotype))
        except Exception:
            return None

    def describe(pool: list[dict]) -> list[Candidate | None]:
        genotypes = [decode(p) for p in pool]
        figures = iter(evaluation.screen([str(g) for g in genotypes if g is not None]))
        return [None if g is None else candidate(p, g, next(figures)) for p, g in zip(pool, genotypes)]

    return Screen(space.choices(), describe, budgets, LATENCY_PREDICTION if predict_latency else None)
