"""Multi-objective early stopping: the promotion rule on hand-made rungs, training in segments,
and searches that stop trials (in this process and on Ray, with MLflow and a kill -9)."""
import os
import re
import signal
import subprocess
import sys

import numpy as np
import optuna
import pytest
import torch

from hwnas.evaluators import Recipe, TrialSpec, evaluate
from hwnas.evaluators.metrics import Metrics
from hwnas.evaluators.training import Trainer, cycles_ending_at
from hwnas.evaluators.trial import trial_data
from hwnas.search import attrs
from hwnas.search.config import RunConfig
from hwnas.search.early_stopping import MOASHA, promotion_order, rungs_of
from hwnas.search.errors import UsageError
from hwnas.search.loop import run_search
from hwnas.search.study import load_study
from hwnas.search.weights import weights_path
from hwnas.spaces import build, parse
from tests.conftest import ROOT

Complete, Pruned, Running = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED,
                             optuna.trial.TrialState.RUNNING)
SMALL = "stem_c8_k3_s1_relu, ds_r1_k3_s2_c16_relu, ir_r1_k3_s2_e3_c24_relu, head_relu"


def test_rungs_are_min_epochs_times_powers_of_eta_below_the_epochs():
    assert rungs_of(10, 1, 3) == (1, 3, 9)
    assert rungs_of(9, 1, 3) == (1, 3)
    assert rungs_of(10, 3, 3) == (3, 9)
    assert rungs_of(27, 2, 2) == (2, 4, 8, 16)
    assert rungs_of(3, 3, 3) == ()


def test_cycles_ending_at_rungs():
    assert cycles_ending_at((), 10) == ((0, 10),)
    assert cycles_ending_at((3, 9), 10) == ((0, 3), (3, 9), (9, 10))


def test_promotion_order_sorts_fronts_and_spreads_each_one():
    # (0,3) (1,1) (3,0) are the first front; (2,2) is dominated by (1,1) only; (4,4) by all
    points = np.array([[0, 3], [1, 1], [3, 0], [2, 2], [4, 4]], float)
    order = promotion_order(points)
    assert order[0] == 0  # the front's best in the first objective leads
    assert order[1] == 2  # then the point farthest from it; the middle one last of its front
    assert order == [0, 2, 1, 3, 4]
    # a newcomer far from the points taken ranks ahead of earlier ones near them (no first-come order)
    crowded = np.array([[0.0, 1.0], [0.05, 0.95], [0.1, 0.9], [1.0, 0.0]])
    assert promotion_order(crowded)[:2] == [0, 3]


def _study_with_rung(accuracies_and_costs):
    """A study holding RUNNING trials with epoch_accuracy and latency recorded, as the loop leaves them."""
    study = optuna.create_study(directions=["maximize", "minimize"])
    numbers = []
    for acc, lat in accuracies_and_costs:
        t = study.ask()
        for name, value in Metrics(epoch_accuracy=[acc], latency_ms=lat).values().items():
            t.set_user_attr(name, value)
        numbers.append(t.number)
    return study, numbers


def test_moasha_keeps_the_top_third_of_a_rung_by_non_dominated_sorting():
    rule = MOASHA(3, ("accuracy", "latency_ms"), (True, False))
    # a rung with fewer than eta trials stops nothing
    study, numbers = _study_with_rung([(0.5, 1.0), (0.9, 1.0)])
    assert rule.promote(study, numbers[0], 1)
    # six trials: (0.9, 1.0) dominates everything else at equal latency; (0.3, 0.2) is alone on
    # the fast end of the front. 6 // 3 = 2 go on: the two ends of the first front
    study, numbers = _study_with_rung([(0.9, 1.0), (0.5, 1.0), (0.6, 1.1), (0.3, 0.2), (0.4, 1.5), (0.55, 1.2)])
    kept = [n for n in numbers if rule.promote(study, n, 1)]
    assert kept == [numbers[0], numbers[3]]
    # a trial not at the rung is a caller's mistake
    with pytest.raises(ValueError):
        rule.promote(study, numbers[0], 3)


def test_training_in_segments_equals_training_at_once():
    """A promoted trial goes on exactly as if it had never stopped: its state travels as bytes."""
    torch.set_num_threads(1)
    recipe = Recipe(epochs=3, rungs=(1, 2), seed=3)
    data = trial_data("digits", "", recipe)

    def fresh():
        torch.manual_seed(0)
        return build(parse(SMALL), data.input_shape, 10)

    whole = Trainer(fresh(), recipe, len(data.train))
    for _ in range(3):
        whole.train_epoch(data.train)
    state = None
    for _ in range(3):
        part = Trainer(fresh(), recipe, len(data.train), state=state)
        part.train_epoch(data.train)
        state = part.state()
    a, b = whole.trained().state_dict(), part.trained().state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # pauses change nothing: the same as training without rungs; cycles ending at rungs do
    plain = Trainer(fresh(), Recipe(epochs=3, seed=3), len(data.train))
    annealed = Trainer(fresh(), Recipe(epochs=3, seed=3), len(data.train), cycles=cycles_ending_at((1, 2), 3))
    for _ in range(3):
        plain.train_epoch(data.train)
        annealed.train_epoch(data.train)
    assert all(torch.equal(a[k], v) for k, v in plain.trained().state_dict().items())
    assert not all(torch.equal(a[k], v) for k, v in annealed.trained().state_dict().items())


def test_evaluate_pauses_at_each_rung_and_goes_on_from_there():
    spec = TrialSpec(0, SMALL, "digits", Recipe(epochs=4, rungs=(1, 3)))
    first = evaluate(spec)
    assert first.paused is not None and first.weights is None
    assert len(first.paused.metrics.epoch_accuracy) == 1 and first.paused.metrics.latency_ms > 0
    second = evaluate(TrialSpec(0, SMALL, "digits", spec.recipe, resume=first.paused))
    assert second.paused is not None and len(second.paused.metrics.epoch_accuracy) == 3
    last = evaluate(TrialSpec(0, SMALL, "digits", spec.recipe, resume=second.paused))
    assert last.paused is None and last.weights is not None
    m = last.metrics
    assert len(m.epoch_accuracy) == 4 and m.epoch_accuracy[:3] == second.paused.metrics.epoch_accuracy
    assert m.accuracy == m.epoch_accuracy[-1]  # read after the last epoch, not again
    assert m.latency_ms == first.paused.metrics.latency_ms  # timed once, before the first epoch


def _check_study(study, trials):
    ended = attrs.ended(study.get_trials(deepcopy=False))
    assert len(ended) == trials
    stopped = [t for t in study.trials if t.state == Pruned]
    complete = attrs.trained(study.trials)
    assert stopped and complete
    for t in stopped:
        m = Metrics.from_attrs(t.user_attrs)
        assert m.stopped_epoch in (1, 2) and len(m.epoch_accuracy) == m.stopped_epoch
        assert m.accuracy is None and m.latency_ms > 0
    for t in complete:
        assert len(Metrics.from_attrs(t.user_attrs).epoch_accuracy) == 4
    return stopped, complete


@pytest.mark.slow
def test_a_search_on_ray_stops_dominated_trials_at_their_rung(tmp_path):
    """Two workers on a local Ray: trials pause, travel back as state and go on in any worker (the
    kill -9 test below runs in this process)."""
    config = RunConfig(trials=10, epochs=4, early_stop="mo-asha", min_epochs=1, eta=2, sampler="random",
                       workers=2, dir=str(tmp_path), study="es", train_subset=400, objectives=(
                           "accuracy", "latency_ms"))
    study = run_search(config, progress=False)
    stopped, complete = _check_study(study, 10)
    front = {t.number for t in study.best_trials}
    assert front <= {t.number for t in complete}  # a stopped trial never enters the front
    assert not any(weights_path(str(tmp_path), config.study, t.number).exists() for t in stopped)  # nor is stored
    assert all(weights_path(str(tmp_path), config.study, t.number).exists() for t in complete)

    # MLflow: the per-epoch history, the stopped runs KILLED and tagged with their rung
    import mlflow

    client = mlflow.MlflowClient()
    exp = client.get_experiment_by_name(config.study)
    runs = {r.data.tags["trial"]: r for r in client.search_runs([exp.experiment_id], "tags.role = 'trial'")}
    t = stopped[0]
    run = runs[str(t.number)]
    assert run.info.status == "KILLED" and run.data.tags["stopped_at_rung"] == str(t.user_attrs["stopped_epoch"])
    history = client.get_metric_history(run.info.run_id, "epoch_accuracy")
    assert [h.step for h in history] == list(range(1, len(t.user_attrs["epoch_accuracy"]) + 1))
    c = complete[0]
    history = client.get_metric_history(runs[str(c.number)].info.run_id, "epoch_accuracy")
    assert sorted((h.step, h.value) for h in history) == list(enumerate(c.user_attrs["epoch_accuracy"], 1))
    parent = client.search_runs([exp.experiment_id], "tags.role = 'study'")[0]
    assert parent.data.metrics["stopped_trials"] == len(stopped)
    assert parent.data.metrics["complete_trials"] == len(complete)


@pytest.mark.slow
def test_kill_9_with_early_stopping_then_the_same_command_finishes(tmp_path):
    args = [sys.executable, "-m", "hwnas.search", "run", "--trials", "8", "--epochs", "4", "--early-stop", "mo-asha",
            "--min-epochs", "1", "--eta", "2", "--train-subset", "400", "--workers", "1", "--sampler", "random",
            "--objectives", "accuracy,latency_ms", "--study", "k", "--dir", str(tmp_path)]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    from tests.search.test_robustness import _wait_for

    # killed while a trial that has passed a rung is running
    def mid(trials):
        return (sum(t.state in (Complete, Pruned) for t in trials) >= 3 and trials[-1].state == Running
                and len(trials[-1].user_attrs.get("epoch_accuracy", ())) >= 1)

    _wait_for(tmp_path, mid, study="k")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = {t.number: t.state for t in load_study(str(tmp_path), "k").trials if t.state in (Complete, Pruned)}
    r = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "stopped at epoch" in r.stderr and "done: 8 trials ended (" in r.stderr and "stopped early)" in r.stderr
    study = load_study(str(tmp_path), "k")
    assert {t.number: t.state for t in study.trials if t.number in before} == before  # nothing lost
    _check_study(study, 8)


@pytest.mark.parametrize("options, fragment", [
    (dict(early_stop="mo-asha", eta=1), "--eta must be at least 2"),
    (dict(early_stop="mo-asha", min_epochs=5, epochs=5), "at or above --epochs 5"),
    (dict(early_stop="mo-asha", min_epochs=0), "--min-epochs must be a positive integer"),
    (dict(early_stop="hyperband"), "unknown --early-stop 'hyperband'; use none or mo-asha"),
    (dict(early_stop="mo-asha", space="nb201"), "--early-stop applies to trained spaces"),
])
def test_bad_early_stopping_options_are_refused(options, fragment):
    with pytest.raises(UsageError, match=re.escape(fragment)):
        RunConfig(**options)


def test_bad_early_stopping_input_is_one_line_exit_2(search_here, tmp_path):
    r = search_here("run", "--dir", str(tmp_path), "--trials", "2", "--early-stop", "mo-asha", "--eta", "1")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "--eta must be" in r.stderr, r.stderr
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("options, method, rungs", [
    (dict(), "mo-asha", (1, 3, 9)),  # --epochs 10: rungs at 1, 3 and 9
    (dict(epochs=4, eta=2), "mo-asha", (1, 2)),
    (dict(epochs=1), "none", ()),  # no rung below --epochs: nothing to stop, and not an error
    (dict(epochs=3, min_epochs=3), "none", ()),
    (dict(space="nb201"), "none", ()),  # a table space trains nothing
    (dict(early_stop="none"), "none", ()),
])
def test_the_default_stops_early_where_a_rung_fits(options, method, rungs):
    config = RunConfig(**options)
    assert (config.early_stop, config.recipe().rungs) == (method, rungs)
    assert RunConfig(**config.as_dict()) == config  # the saved config says what ran
