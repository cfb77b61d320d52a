"""Pins what search/_private.py relies on in Optuna's and Ray's private APIs: if an upgrade moves
them, these fail first, naming the wrapper to fix."""
import inspect

import optuna

from hwnas.search import _private


def test_a_frozen_running_trial_takes_a_user_attribute(tmp_path):
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(tmp_path / "j.log")))
    study = optuna.create_study(storage=storage)
    study.ask()
    frozen = study.get_trials(deepcopy=False)[0]  # what a sampler or another process holds
    _private.set_trial_user_attr(study, frozen, "screened", 7)
    again = optuna.load_study(study_name=study.study_name, storage=storage).trials[0]
    assert again.user_attrs == {"screened": 7} and again.state == optuna.trial.TrialState.RUNNING


def test_ray_worker_notices_go_to_stderr(capsys):
    from ray._private import worker

    # Ray calls the function by its module-level name at each message, so replacing it there works
    source = inspect.getsource(worker)
    assert "print_to_stdstream(\n" in source and "functools.partial(print_to_stdstream" in source
    _private.ray_errors_to_stderr()
    _private.ray_errors_to_stderr()  # twice: wrapped once
    assert worker.print_to_stdstream.to_stderr
    worker.print_to_stdstream({"lines": ["a worker died"], "pid": "raylet", "is_err": False}, ignore_prefix=False)
    out, err = capsys.readouterr()
    assert "a worker died" in err and "a worker died" not in out
