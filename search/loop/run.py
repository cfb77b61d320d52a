"""The ask/tell loop: the Optuna study is the single source of truth; executors only evaluate."""
from __future__ import annotations

import math
import sys
import time

import optuna
import torch

from hwnas.evaluators import TrialSpec, evaluation_for, quiet
from hwnas.evaluators.data import DataError
from hwnas.evaluators.latency import device_problem
from hwnas.spaces import get_space

from ..config import RunConfig
from ..errors import UsageError
from ..executors import LocalExecutor, Outcome, make_executor
from ..samplers import screen_for
from ..recovery import OWNER, abandon, reclaim_abandoned
from ..study import journal_path, open_study
from ..observers.tracking import Store, Tracker
from ..weights import save_weights

Complete, Running = optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.RUNNING


def _complete(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(Complete,))


class Progress:
    """One line per finished trial on stderr: count, metrics, front size, elapsed and ETA."""

    def __init__(self, target: int, start_count: int, stream=None) -> None:
        self.target, self.start_count, self.stream = target, start_count, stream
        self.t0 = time.perf_counter()

    @staticmethod
    def _clock(seconds: float) -> str:
        seconds = int(seconds)
        return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"

    def trial(self, done: int, number: int, outcome: str, front: int) -> None:
        elapsed = time.perf_counter() - self.t0
        new = done - self.start_count
        eta = elapsed / new * (self.target - done) if new > 0 else math.nan
        eta_text = self._clock(eta) if math.isfinite(eta) else "?"
        width = len(str(self.target))
        print(f"[{done:>{width}}/{self.target}] trial {number:<4} {outcome}  | front {front} | "
              f"elapsed {self._clock(elapsed)} eta {eta_text}", file=self.stream or sys.stderr, flush=True)


def _describe(metrics: dict) -> str:
    parts = [f"acc {metrics['accuracy']:.4f}", f"lat {metrics['latency_ms']:.3f} ms"]
    text = "  ".join(parts + [f"{k} {metrics[k] / 1e6:.3f} M" for k in ("macs", "params") if k in metrics])
    if "exit_rates" in metrics:
        text += (f"  exits: full acc {metrics['accuracy_full']:.4f}, expected macs "
                 f"{metrics['expected_macs'] / 1e6:.3f} M, rates {'/'.join(f'{r:.2f}' for r in metrics['exit_rates'])}")
    return text


def run_search(config: RunConfig, executor=None, progress: bool = True, track: bool = True) -> optuna.Study:
    """Ask, evaluate and tell until the study holds ``config.trials`` COMPLETE trials; with ``track``,
    log each told trial and the study to MLflow (search.tracking)."""
    recipe = config.recipe()
    problem = device_problem(config.device, check_available=True)
    if problem:
        raise UsageError(problem)
    space = get_space(config.space, **({"exits": True} if config.exits else {}))
    try:  # read the data first: a data set that cannot be read leaves no study behind
        evaluation = evaluation_for(space.evaluator, config.dataset, config.data_dir, recipe, config.device)
    except DataError as e:
        raise UsageError(str(e)) from None
    # a table is read in this process (evaluation.lookup): no workers to start for it
    executor = executor or (LocalExecutor() if evaluation.lookup else make_executor(
        config.workers, config.ray_address, config.cpus_per_trial, config.gpus_per_trial))
    if not isinstance(executor, LocalExecutor):
        torch.set_num_threads(1)  # workers own the cores; this process only asks, screens and tells
    try:
        study = open_study(config, screen_for(space, evaluation))
        tracker = Tracker(study, config) if track else None
    except BaseException:
        executor.close()
        raise
    if progress:
        print(f"study {config.study!r} in {journal_path(config.dir, config.study)}: space {config.space}, "
              f"data {evaluation.description}, sampler {config.sampler}, objectives {','.join(config.objectives)}, "
              f"{config.trials} trials, {config.epochs} epochs", file=sys.stderr)
        if track:
            print(f"MLflow: experiment {config.study!r} in {Store.resolve().uri} (`search ui` to browse)",
                  file=sys.stderr)
        print(f"trials run in {executor.description}", file=sys.stderr)
    for number in reclaim_abandoned(study):
        print(f"trial {number} was left running by a search process that died: failed, queued again",
              file=sys.stderr)
        if tracker:
            tracker.trial(study, study.trials[number])
    # genotype text -> metrics of a COMPLETE trial: an equal genotype is not trained again
    complete = _complete(study)
    known = {t.user_attrs["genotype"]: (t.number, t.user_attrs["metrics"]) for t in complete
             if "metrics" in t.user_attrs}
    done = len(complete)
    report = Progress(config.trials, done) if progress else None
    in_flight: dict[int, optuna.trial.Trial] = {}

    def finish(trial: optuna.trial.Trial, metrics: dict) -> None:
        nonlocal done
        trial.set_user_attr("metrics", metrics)
        for key, value in metrics.items():
            trial.set_user_attr(key, value)
        told = study.tell(trial, [metrics[o] for o in config.objectives])
        if tracker:
            tracker.trial(study, told)
        known.setdefault(trial.user_attrs["genotype"], (trial.number, metrics))
        done += 1
        if report:
            report.trial(done, trial.number, _describe(metrics), len(study.best_trials))

    # This process's own work (screening, telling, logging) holds the cores like a training step:
    # a trial on the same cores times its model only while it pauses (evaluators.quiet).
    quiet.install(executor.driver_quiet())
    try:
        while True:
            with quiet.training():
                # Counted in the storage, so two `search run`s on one study share the work.
                states = [t.state for t in study.get_trials(deepcopy=False, states=(Complete, Running))]
                done, running = states.count(Complete), states.count(Running)
                if done >= config.trials and not in_flight:
                    break
                while len(in_flight) < executor.capacity and done + running < config.trials:
                    trial = study.ask()
                    in_flight[trial.number] = trial  # from here on, an interrupt abandons it
                    trial.set_user_attr("owner", OWNER)
                    genotype = str(space.sample(trial, evaluation.input_shape))
                    trial.set_user_attr("genotype", genotype)
                    if genotype in known or evaluation.lookup:  # no executor needed
                        if genotype in known:
                            original, metrics = known[genotype]
                            trial.set_user_attr("duplicate_of", original)
                        else:  # a table: read here
                            metrics = evaluation.lookup(genotype)
                        finish(trial, metrics)
                        del in_flight[trial.number]
                        continue
                    executor.submit(TrialSpec(trial.number, genotype, config.dataset, recipe, config.device,
                                              config.data_dir, config.threads,
                                              exit_tolerance=config.exit_tolerance))
                    running += 1
            if in_flight:
                outcomes = executor.wait()
                with quiet.training():
                    for outcome in outcomes:
                        _record(study, in_flight[outcome.spec.number], outcome, finish, report, done, tracker)
                        if outcome.weights is not None:
                            save_weights(config.dir, config.study, outcome.spec.number, outcome.weights)
                        del in_flight[outcome.spec.number]
            elif done < config.trials:  # the last trials run in another process: wait for them
                time.sleep(1.0)
                reclaim_abandoned(study)
    except BaseException as e:
        # In-flight trials are abandoned, not finished: failed with the reason, queued to run again.
        reason = ("interrupted (Ctrl-C) before it finished" if isinstance(e, KeyboardInterrupt)
                  else f"the search stopped before it finished ({type(e).__name__}: {e})")
        for trial in in_flight.values():
            try:
                abandon(study, trial, reason)
            except optuna.exceptions.UpdateFinishedTrialError:
                continue  # told just before the interrupt
            if tracker:
                tracker.trial(study, study.trials[trial.number])
        raise
    finally:
        quiet.install(quiet.Alone())
        executor.close()
        if tracker:
            tracker.finish(study, completed=done >= config.trials)
    return study


def _record(study, trial, outcome: Outcome, finish, report, done: int, tracker=None) -> None:
    trial.set_user_attr("device", outcome.spec.device)
    if outcome.retries:
        trial.set_user_attr("retries", outcome.retries)
    if outcome.metrics is not None:
        finish(trial, outcome.metrics)
        return
    trial.set_user_attr("fail_reason", outcome.error)
    told = study.tell(trial, state=optuna.trial.TrialState.FAIL)
    if tracker:
        tracker.trial(study, told)
    if report:
        report.trial(done, trial.number, f"FAILED: {outcome.error}", len(study.best_trials))
