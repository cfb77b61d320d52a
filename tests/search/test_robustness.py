"""A search survives kill -9, Ctrl-C, a second process on the same study, and bad input."""
import os
import signal
import subprocess
import sys
import time

import optuna
import pytest

import mlflow
from hwnas.search.study import journal_path, load_study
from tests.conftest import ROOT

Complete, Fail, Running = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL,
                           optuna.trial.TrialState.RUNNING)


def _start(tmp_path, trials: int, study: str = "s"):
    args = [sys.executable, "-m", "hwnas.search", "run", "--trials", str(trials), "--epochs", "1", "--workers", "1",
            "--sampler", "random", "--study", study, "--dir", str(tmp_path)]
    return subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True), args


def _wait_for(tmp_path, predicate, timeout=240, study="s"):
    """Poll the study until predicate(trials) holds (a trial RUNNING after some COMPLETE)."""
    end = time.time() + timeout
    while time.time() < end:
        if journal_path(str(tmp_path), study).exists():
            try:
                trials = load_study(str(tmp_path), study).get_trials(deepcopy=False)
                if predicate(trials):
                    return trials
            except Exception:
                pass  # the study is still being created
        time.sleep(0.2)
    raise AssertionError("the run never reached the awaited state")


def _mid_run(trials):
    return sum(t.state == Complete for t in trials) >= 1 and trials[-1].state == Running


@pytest.mark.slow
def test_kill_9_then_the_same_command_resumes(tmp_path, mlflow_store):
    proc, args = _start(tmp_path, 4)
    _wait_for(tmp_path, _mid_run)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    survivors = {t.number for t in load_study(str(tmp_path), "s").trials if t.state == Complete}
    assert survivors
    abandoned = [t for t in load_study(str(tmp_path), "s").trials if t.state == Running]
    assert abandoned  # the dead process left a RUNNING trial behind

    r = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    study = load_study(str(tmp_path), "s")
    by_number = {t.number: t for t in study.trials}
    assert sum(t.state == Complete for t in study.trials) == 4
    assert survivors <= {t.number for t in study.trials if t.state == Complete}  # nothing lost
    assert not [t for t in study.trials if t.state == Running]
    for t in abandoned:
        dead = by_number[t.number]
        assert dead.state == Fail and "abandoned" in dead.user_attrs["fail_reason"]
        retry = [u for u in study.trials if u.user_attrs.get("retry_of") == t.number]
        if "genotype" in dead.user_attrs:  # its network was sampled: that network runs again
            assert retry and retry[0].params == dead.params and retry[0].state == Complete
        else:  # killed while its parameters were asked: a sampler's half answer is not run
            assert not retry
    # MLflow: no run of this study left RUNNING, failed trial logged as failed
    runs = mlflow.search_runs(experiment_names=["s"], output_format="list")
    assert runs and not [r for r in runs if r.info.status == "RUNNING"]
    failed = [r for r in runs if r.data.tags.get("state") == "FAIL"]
    assert {int(r.data.tags["trial"]) for r in failed} >= {t.number for t in abandoned}


def test_an_abandoned_trial_is_retried_only_when_its_network_was_sampled(tmp_path):
    from hwnas.search.recovery import abandon

    study = optuna.create_study(storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "j.log"))))
    sampled, halfway = study.ask(), study.ask()
    for trial in (sampled, halfway):
        trial.suggest_categorical("width", [8, 16])
    sampled.suggest_categorical("kernel", [3, 5])
    sampled.set_user_attr("genotype", "stem_c8_k3_s1_relu, conv_r1_k3_s2_c16_relu, head_relu")
    for trial in (sampled, halfway):
        told = abandon(study, trial, "interrupted")
        assert told.state == Fail and told.user_attrs["fail_reason"] == "abandoned: interrupted"
    assert abandon(study, sampled, "again") is None  # finished already: left as it is
    assert len(study.get_trials(states=(optuna.trial.TrialState.WAITING,))) == 1  # the sampled one only
    retry = study.ask()
    assert retry.user_attrs["retry_of"] == sampled.number
    assert {n: retry.suggest_categorical(n, o) for n, o in (("width", [8, 16]), ("kernel", [3, 5]))} == sampled.params


def test_this_process_s_own_running_trials_are_reclaimed_only_as_a_run_starts(tmp_path):
    """A trial left RUNNING by this very process (an earlier run whose record of the trial's end
    was lost) is reclaimed when a run starts; during a run, this process's trials are its own
    in flight and stay, and so do a live other process's."""
    from hwnas.search.recovery import THIS_PROCESS, _start_time, reclaim_abandoned

    study = optuna.create_study(storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "j.log"))))
    ours, theirs = study.ask(), study.ask()
    ours.set_user_attr("owner", THIS_PROCESS)
    parent = os.getppid()  # alive, and another process
    theirs.set_user_attr("owner", f"{THIS_PROCESS.split(':')[0]}:{parent}:{_start_time(parent)}")
    assert reclaim_abandoned(study) == []
    assert reclaim_abandoned(study, starting=True) == [ours.number]
    trials = study.get_trials()
    assert trials[ours.number].state == Fail and "an earlier run in this process" in trials[ours.number].user_attrs[
        "fail_reason"]
    assert trials[theirs.number].state == Running


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_with_the_front_so_far(tmp_path):
    proc, args = _start(tmp_path, 50)
    _wait_for(tmp_path, _mid_run)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert "genotype" in out.splitlines()[0]  # the front so far, as a table
    study = load_study(str(tmp_path), "s")
    assert not [t for t in study.trials if t.state == Running]
    stopped = [t for t in study.trials if t.state == Fail]
    assert stopped and all("interrupted" in t.user_attrs["fail_reason"] for t in stopped)


@pytest.mark.slow
def test_two_processes_share_one_study(tmp_path):
    (a, _), (b, _) = _start(tmp_path, 6), _start(tmp_path, 6)
    for p in (a, b):
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
    study = load_study(str(tmp_path), "s")
    numbers = [t.number for t in study.trials]
    assert len(numbers) == len(set(numbers))
    assert 6 <= sum(t.state == Complete for t in study.trials) <= 7  # 7 only if both asked at once
    assert not [t for t in study.trials if t.state == Running]


def _snapshot(root):
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _one_line_exit_2(search_here, *argv):
    r = search_here(*argv)
    err = r.stderr.strip()
    assert r.returncode == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("search: error:") and "Traceback" not in err
    return err


@pytest.mark.parametrize("argv,fragment", [
    (["run", "--space", "nope"], "'nope'"),
    (["run", "--sampler", "nope"], "'nope'"),
    (["run", "--objectives", "accuracy,speed"], "'speed'"),
    (["run", "--dataset", "nope"], "'nope'"),
    (["run", "--trials", "0"], "--trials"),
    (["run", "--trials", "-3"], "--trials"),
    (["run", "--workers", "0"], "--workers"),
    (["run", "--dataset", "fashion-mnist", "--data-dir", "/nonexistent/fmnist"], "/nonexistent/fmnist"),
    (["front", "--study", "missing"], "'missing'"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, search_here, argv, fragment):
    err = _one_line_exit_2(search_here, *argv, "--dir", str(tmp_path))
    assert fragment in err
    assert list(tmp_path.iterdir()) == []


def test_malformed_and_unknown_config_files(tmp_path, search_here):
    bad = tmp_path / "bad.yaml"
    bad.write_text("trials: [1, 2\n")
    assert "bad.yaml" in _one_line_exit_2(search_here, "run", "--config", str(bad), "--dir", str(tmp_path / "r"))
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("trials: 3\ntrails: 4\n")
    assert "trails" in _one_line_exit_2(search_here, "run", "--config", str(unknown), "--dir", str(tmp_path / "r"))
    assert not (tmp_path / "r").exists()


def test_corrupt_study_file_is_reported_and_left_as_it_was(tmp_path, capsys, search_here):
    from hwnas.search.cli import main

    assert main(["run", "--trials", "1", "--epochs", "1", "--workers", "1", "--study", "s",
                 "--dir", str(tmp_path)]) == 0
    journal = journal_path(str(tmp_path), "s")
    with journal.open("ab") as f:
        f.write(b'{"op_code": 5, "worker_id": "x", "trial_id": \n{not json}\n')
    before = _snapshot(tmp_path)
    capsys.readouterr()
    for argv in (["front", "--study", "s"], ["run", "--trials", "2", "--epochs", "1", "--study", "s"]):
        assert "corrupt" in _one_line_exit_2(search_here, *argv, "--dir", str(tmp_path))
    assert _snapshot(tmp_path) == before


def test_a_stale_lock_from_a_killed_writer_is_broken(tmp_path, capsys):
    from hwnas.search.cli import main

    assert main(["run", "--trials", "1", "--epochs", "1", "--workers", "1", "--study", "s",
                 "--dir", str(tmp_path)]) == 0
    journal = journal_path(str(tmp_path), "s")
    lock = journal.with_name(journal.name + ".lock")
    os.symlink(journal, lock)
    old = time.time() - 60
    os.utime(lock, (old, old), follow_symlinks=False)
    capsys.readouterr()
    assert main(["run", "--trials", "2", "--epochs", "1", "--workers", "1", "--study", "s",
                 "--dir", str(tmp_path)]) == 0
    assert "removed a stale lock" in capsys.readouterr().err
    assert sum(t.state == Complete for t in load_study(str(tmp_path), "s").trials) == 2
