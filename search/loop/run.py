"""The search loop: ask, evaluate, tell, until the study holds ``config.trials`` COMPLETE trials.

The Optuna study is the single source of truth; executors only evaluate, observers only watch.
One trial's handling lives in ``loop.trial``; this module holds the loop around it.
"""
from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace

import optuna

from hwnas.evaluators import Evaluation, TrialSpec, evaluation_for, quiet
from hwnas.evaluators.budgets import Budget, Closest
from hwnas.evaluators.data import DataError
from hwnas.evaluators.evaluation import Trained
from hwnas.evaluators.latency import device_problem
from hwnas.evaluators.metrics import Extras, Metrics
from hwnas.evaluators.runtimes import SCREENED_IN
from hwnas.spaces import Space, get_space

from .. import attrs
from ..config import RunConfig
from ..early_stopping import stopper_for
from ..errors import RunFailure, UsageError
from ..executors import Executor, make_executor
from ..observers import FrontFiles, Observer, Progress, Store, Tracker
from ..recovery import THIS_PROCESS, abandon, reclaim_abandoned
from ..samplers import screen_for
from ..study import check_continuation, journal_path, open_study
from . import trial as one
from .feasible import announce, check_feasible

Complete, Running = optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.RUNNING
Pruned = optuna.trial.TrialState.PRUNED
ENDED = (Complete, Pruned)  # what counts toward --trials (attrs.ended): trained, or stopped early
# Trials that fail one after another, with no COMPLETE between, before the run stops: a fault
# every trial hits (a bad option, a broken node) would otherwise fail trials forever.
FAILURES_IN_A_ROW = 20
# Candidates rejected over a budget one after another before the run stops: each costs
# milliseconds, but a sampler that finds nothing within budget would draw forever.
REJECTED_IN_A_ROW = 200


class _Failures:
    """The reasons of the trials that failed since the last COMPLETE one."""

    def __init__(self) -> None:
        self.reasons: Counter[str] = Counter()

    def told(self, trial: optuna.trial.FrozenTrial) -> None:
        if trial.state in ENDED:
            if not attrs.rejected(trial):  # a rejected candidate neither fails nor shows the trials work
                self.reasons.clear()
            return
        self.reasons[str(trial.user_attrs.get(attrs.FAIL_REASON, "unknown"))[:200]] += 1
        if self.reasons.total() >= FAILURES_IN_A_ROW:
            counted = "; ".join(f"{n} x {reason}" for reason, n in self.reasons.most_common(3))
            raise RunFailure(f"{self.reasons.total()} trials in a row failed ({counted}); the search stopped "
                             f"and the study keeps them: fix the cause and run the same command again")


class _Rejections:
    """Candidates rejected over a budget since the last trained trial, and the best figures seen."""

    def __init__(self, budgets: tuple[Budget, ...]) -> None:
        self.count, self.closest = 0, Closest(budgets)

    def told(self, trial: optuna.trial.FrozenTrial) -> None:
        if trial.state not in ENDED:
            return
        if not attrs.rejected(trial):
            self.count = 0
            return
        self.count += 1
        self.closest.see(Metrics.from_attrs(trial.user_attrs))
        if self.count >= REJECTED_IN_A_ROW:
            raise RunFailure(f"{self.count} candidates in a row were over the budgets ({self.closest}); the sampler "
                             f"finds none within them: loosen a budget and run the same command again")


def run_search(config: RunConfig, executor: Executor | None = None, progress: bool = True, track: bool = True,
               callbacks: Sequence[Observer] = ()) -> optuna.Study:
    """Run (or continue) the search ``config`` describes. Observers see every told trial: the
    ``callbacks`` given, the front files beside the study, the MLflow tracker (``track``) and the
    progress line (``progress``)."""
    problem = device_problem(config.device, check_available=True, bf16=config.precision == "bf16")
    if problem:
        raise UsageError(problem)
    space = get_space(config.space, exits=config.exits)
    try:  # read the data first: a data set that cannot be read leaves no study behind
        read = (*config.objectives, *(b.metric for b in config.budgets))
        evaluation = evaluation_for(space.evaluated, config.dataset, config.data_dir, config.recipe(), config.device,
                                    config.runtime, config.throughput_batch, Extras.read_by(read), config.latency_table,
                                    bool(config.predict_latency))
    except DataError as e:
        raise UsageError(str(e)) from None
    problem = space.input_problem(evaluation.input_shape) if evaluation.input_shape else None
    if problem:
        raise UsageError(problem)
    # Before the study is touched: a budget nothing meets changes nothing. Not on a predicted
    # table's stand-in figures (another device's); with --latency-on, once the screen is scaled.
    if config.budgets and not config.latency_on and not (config.predict_latency and config.latency_table):
        check_feasible(space, evaluation, config.budgets, config.seed)
    storage = check_continuation(config, space)  # before Ray starts: a refusal takes no seconds
    executor = executor or make_executor(evaluation, config.workers, config.ray_address, config.cpus_per_trial,
                                         config.gpus_per_trial, device=config.device, latency_on=config.latency_on)
    try:
        if config.latency_on:  # screened here, timed on the device: a screen reads as the device
            assert isinstance(evaluation, Trained)  # the config allows --latency-on on trained spaces only
            scale = executor.screen_scale(SCREENED_IN[config.runtime], evaluation.input_shape)
            evaluation = replace(evaluation, latency_scale=scale)
            if config.budgets:
                check_feasible(space, evaluation, config.budgets, config.seed)
        study = open_study(config, screen_for(space, evaluation, config.budgets, bool(config.predict_latency)), space,
                           storage)
        observers: list[Observer] = [*callbacks, FrontFiles(journal_path(config.dir, config.study).parent)]
        if track:
            observers.append(Tracker(study, config))
        if progress:
            observers.append(Progress(study, config.trials))
    except BaseException:
        executor.close()
        raise
    if progress:
        print(f"study {config.study!r} in {journal_path(config.dir, config.study)}: space {config.space}, "
              f"data {evaluation.description}, sampler {config.sampler}, objectives {','.join(config.objectives)}, "
              f"{config.trials} trials, {config.epochs} epochs{_stopping(config)}", file=sys.stderr)
        if track:
            print(f"MLflow: experiment {config.study!r} in {Store.resolve().uri} (`search ui` to browse)",
                  file=sys.stderr)
        print(f"trials run in {executor.description}", file=sys.stderr)
        if config.budgets:
            announce(config.budgets)
    completed = False
    # This process's own work (screening, telling, logging) holds the cores like a training step:
    # a trial on the same cores times its model only while it pauses (evaluators.quiet).
    quiet.install(executor.driver_quiet())
    try:
        _optimize(study, config, space, evaluation, executor, observers)
        completed = True
    finally:
        quiet.install(quiet.Alone())
        executor.close()
        for observer in observers:
            observer.close(study, completed)
    return study


def _notify(observers: Sequence[Observer], study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    for observer in observers:
        observer(study, trial)


def _twin(study: optuna.Study, number: int, genotype: str) -> optuna.trial.FrozenTrial | None:
    """The first other trial of ``genotype`` that ended (COMPLETE, or stopped early: PRUNED), or
    else RUNNING with a lower number (so of two trials that drew one network at once, the later
    waits for the earlier)."""
    twins = [t for t in study.get_trials(deepcopy=False, states=(*ENDED, Running))  # a rejected one was not
             if t.number != number and t.user_attrs.get(attrs.GENOTYPE) == genotype and not attrs.rejected(t)]
    complete = [t for t in twins if t.state in ENDED]
    running = [t for t in twins if t.state == Running and t.number < number]
    return min(complete or running, key=lambda t: t.number, default=None)


def _optimize(study: optuna.Study, config: RunConfig, space: Space, evaluation: Evaluation, executor: Executor,
              observers: Sequence[Observer]) -> None:
    """Keep the executor full until the study holds ``config.trials`` COMPLETE trials. On any
    exception the trials in flight are abandoned (failed with the reason, queued to run again)."""
    for number in reclaim_abandoned(study, starting=True):
        print(f"trial {number} was left running by a search that did not finish it: failed, queued again",
              file=sys.stderr)
        _notify(observers, study, study.trials[number])
    recipe = config.recipe()
    in_flight: dict[int, optuna.trial.Trial] = {}
    # trials whose genotype an earlier trial is training (here or in another `search run`): they
    # wait for its figures rather than train it again; trial number -> (trial, genotype, original)
    waiting: dict[int, tuple[optuna.trial.Trial, str, int]] = {}
    failures, rejections = _Failures(), _Rejections(config.budgets)
    stopper = stopper_for(config.early_stop, recipe.rungs, config.eta, config.objectives)

    def submit(trial: optuna.trial.Trial, genotype: str) -> None:
        in_flight[trial.number] = trial
        executor.submit(TrialSpec(trial.number, genotype, config.dataset, recipe, config.device, config.data_dir,
                                  config.threads, exit_tolerance=config.exit_tolerance, runtime=config.runtime,
                                  throughput_batch=config.throughput_batch, budgets=config.budgets,
                                  latency_table=config.latency_table))

    def duplicate(trial: optuna.trial.Trial, original: optuna.trial.FrozenTrial) -> bool:
        """Tells ``trial`` with ``original``'s figures; whether it counts (not over a budget)."""
        told = one.tell_duplicate(study, trial, original, config.objectives, config.budgets)
        _notify(observers, study, told)
        rejections.told(told)
        return not attrs.rejected(told)

    try:
        while True:
            with quiet.training():
                for number, (trial, genotype, original) in list(waiting.items()):
                    first = study.get_trials(deepcopy=False)[original]
                    if first.state in ENDED and not attrs.rejected(first):
                        duplicate(trial, first)
                    elif first.state == Running or len(in_flight) >= executor.capacity:
                        continue
                    else:  # the original failed or was rejected: this trial is evaluated itself
                        submit(trial, genotype)
                    del waiting[number]
                # Counted in the storage, so two `search run`s on one study share the work; a
                # candidate rejected over a budget does not count.
                trials = study.get_trials(deepcopy=False, states=(*ENDED, Running))
                done = len(attrs.ended(trials))
                running = sum(t.state == Running for t in trials)
                if done >= config.trials and not in_flight and not waiting:
                    return
                while len(in_flight) < executor.capacity and done + running < config.trials:
                    trial = study.ask()
                    in_flight[trial.number] = trial  # from here on, an interrupt abandons it
                    trial.set_user_attr(attrs.OWNER, THIS_PROCESS)
                    genotype = one.sample(trial, space, evaluation)
                    del in_flight[trial.number]
                    # an equal genotype is not trained again, whichever process drew it first
                    twin = _twin(study, trial.number, genotype)
                    if twin is not None and twin.state in ENDED:
                        done += duplicate(trial, twin)
                    elif twin is not None:
                        waiting[trial.number] = (trial, genotype, twin.number)
                        running += 1
                    else:
                        submit(trial, genotype)
                        running += 1
            if in_flight:
                outcomes = executor.wait()
                with quiet.training():
                    for outcome in outcomes:
                        trial = in_flight.pop(outcome.spec.number)
                        result = outcome.result
                        if result is not None and result.paused is not None:  # at a rung: on, or stopped
                            one.record_rung(trial, result.paused.metrics)
                            rung = len(result.paused.metrics.epoch_accuracy or ())
                            if stopper is None or stopper.promote(study, trial.number, rung):
                                in_flight[trial.number] = trial
                                executor.submit(replace(outcome.spec, resume=result.paused))
                                continue
                            told = one.tell_stopped(study, trial, result.paused.metrics, config.budgets,
                                                    result.summary)
                        else:
                            told = one.tell_outcome(study, trial, outcome, config.objectives, config.dir)
                        _notify(observers, study, told)
                        failures.told(told)
                        rejections.told(told)
            elif waiting or done < config.trials:  # trials run in another process: wait for them
                time.sleep(1.0)
                reclaim_abandoned(study)
    except BaseException as e:
        reason = ("interrupted (Ctrl-C) before it finished" if isinstance(e, KeyboardInterrupt)
                  else f"the search stopped before it finished ({type(e).__name__}: {e})")
        for trial in [*in_flight.values(), *(t for t, _, _ in waiting.values())]:
            failed = abandon(study, trial, reason)
            if failed is not None:
                _notify(observers, study, failed)
        raise


def _stopping(config: RunConfig) -> str:
    """The run header's words on early stopping: where trials are judged, if anywhere."""
    rungs = config.recipe().rungs
    if not rungs:
        return ""
    return f", early stop {config.early_stop} at epoch{'s' if len(rungs) > 1 else ''} {', '.join(map(str, rungs))}"
