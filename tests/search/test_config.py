"""The run configuration: flags and YAML keys from one dataclass, precedence, saved with the study."""
import dataclasses
import re

import optuna
import pytest
import yaml

from hwnas.evaluators import count_macs
from hwnas.evaluators.budgets import Budget
from hwnas.evaluators.metrics import BUDGETS
from hwnas.search.cli import parser
from hwnas.search.config import RunConfig, config_from_args
from hwnas.search.errors import UsageError
from hwnas.search.study import load_study
from hwnas.spaces import build, parse

CLI_DOC = __import__("pathlib").Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def config(*argv: str) -> RunConfig:
    return config_from_args(parser().parse_args(["run", *argv]))


def test_every_field_is_a_flag_a_key_and_documented(tmp_path):
    help_text = parser()._subparsers._group_actions[0].choices["run"].format_help()
    reference = CLI_DOC.read_text()
    for f in dataclasses.fields(RunConfig):
        if f.metadata["budgets"]:  # one flag and key per budget, from the metric registry
            for key in BUDGETS:
                flag = "--" + key.replace("_", "-")
                assert flag in help_text and f"`{flag}`" in reference, flag
                (tmp_path / "c.yaml").write_text(yaml.safe_dump({key: 7}))
                assert config("--config", str(tmp_path / "c.yaml")).budgets == (Budget(key, 7.0),)
            continue
        flag = "--" + f.name.replace("_", "-")
        assert flag in help_text and f"`{flag}`" in reference, flag
        (tmp_path / "c.yaml").write_text(yaml.safe_dump({f.name: RunConfig().as_dict()[f.name]}))
        assert config("--config", str(tmp_path / "c.yaml")) == RunConfig()


def test_precedence_defaults_then_file_then_flags(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("epochs: 3\nobjectives: [accuracy, params]\ntrain-subset: 500\naugment: false\n")
    c = config("--config", str(path), "--epochs", "2", "--seed", "7")
    assert (c.epochs, c.objectives, c.train_subset, c.augment, c.seed) == (2, ("accuracy", "params"), 500, False, 7)
    assert c.study == "mobile" and c.batch_size == 64  # defaults; the study name resolved to the space's
    assert config("--config", str(path), "--augment").augment is True
    assert config("--objectives", "accuracy,macs").objectives == ("accuracy", "macs")


@pytest.mark.parametrize("text,fragment", [
    ("epochs: 2\nlearning_rate: 0.1\n", "unknown key 'learning_rate' in --config"),
    ("epochs: [1\n", "is not valid YAML at line 2"),
    ("- epochs\n", "must hold a mapping"),
    ("epochs: two\n", "bad 'epochs' in --config"),
    ("augment: 1\n", "'augment' in --config .*: 1 is not true or false"),
    ("trials: 0\n", "--trials must be a positive integer"),
])
def test_bad_config_files(tmp_path, text, fragment):
    (tmp_path / "c.yaml").write_text(text)
    with pytest.raises(UsageError, match=fragment):
        config("--config", str(tmp_path / "c.yaml"))


def test_bad_flag_values():
    with pytest.raises(UsageError, match="bad --epochs: 'x' is not an integer"):
        config("--epochs", "x")
    with pytest.raises(UsageError, match="unknown data set 'imagenet'; available: digits, fashion-mnist, cifar10, folder:PATH"):
        config("--dataset", "imagenet")
    with pytest.raises(UsageError, match="unknown --device 'tpu'"):
        config("--device", "tpu")


@pytest.mark.parametrize("args,fragment", [
    (["--device", "cuda", "--gpus-per-trial", "1.5"], "--gpus-per-trial above 1 must be a whole number, got 1.5"),
    (["--gpus-per-trial", "0.25"], "--gpus-per-trial 0.25 gives trials a GPU, but they train on --device cpu"),
    (["--device", "cuda", "--gpus-per-trial", "0"], "--gpus-per-trial 0 leaves trials no GPU"),
    (["--precision", "bf16"], "--precision bf16 trains under CUDA autocast; use it with --device cuda"),
    (["--device", "cuda", "--precision", "fp16"], "unknown --precision 'fp16'; use fp32 or bf16"),
])
def test_gpu_options_that_cannot_work_are_refused(args, fragment):
    with pytest.raises(UsageError, match=re.escape(fragment)):
        config(*args)
    assert config("--device", "cuda", "--gpus-per-trial", "0.25", "--precision", "bf16").recipe().precision == "bf16"


@pytest.mark.slow
@pytest.mark.slow
def test_config_file_round_trip(search_here, tmp_path):
    """`search run --config <saved config.yaml>` is the same run as the flags that made it."""
    flags = ["--trials", "2", "--epochs", "1", "--sampler", "random", "--seed", "3", "--batch-size", "32", "--workers", "1",
             "--train-subset", "600", "--resolution", "10", "--objectives", "accuracy,macs"]
    r = search_here("run", *flags, "--study", "a", "--dir", str(tmp_path / "flags"))
    assert r.returncode == 0, r.stderr
    saved = tmp_path / "flags" / "a" / "config.yaml"
    r = search_here("run", "--config", str(saved), "--dir", str(tmp_path / "file"))
    assert r.returncode == 0, r.stderr
    a, b = (yaml.safe_load((tmp_path / d / "a" / "config.yaml").read_text()) for d in ("flags", "file"))
    assert a.pop("dir") != b.pop("dir") and a == b
    assert a["resolution"] == 10 and a["train_subset"] == 600 and a["study"] == "a"
    studies = [load_study(str(tmp_path / d), "a") for d in ("flags", "file")]
    assert studies[0].user_attrs["config"]["batch_size"] == 32
    rows = [[(t.user_attrs["genotype"], t.user_attrs["accuracy"], t.user_attrs["macs"])
             for t in s.get_trials(states=(optuna.trial.TrialState.COMPLETE,))] for s in studies]
    assert len(rows[0]) == 2 and rows[0] == rows[1]
    # the resolution reached the networks: their MACs are those of 10x10 inputs
    g, _, macs = rows[0][0]
    assert count_macs(build(parse(g), (1, 10, 10), 10), (1, 10, 10)) == macs


@pytest.mark.parametrize("args,fragment", [
    (["--config", "CFG"], "unknown key 'epoch' in --config"),
    (["--dataset", "fashion-mnist", "--data-dir", "EMPTY"], "Fashion-MNIST not found: no train-images-idx3-ubyte"),
    (["--device", "cuda:7"], "--device cuda:7 asked"),
])
def test_bad_run_input_is_one_line_exit_2_and_writes_nothing(search_here, tmp_path, args, fragment):
    (tmp_path / "c.yaml").write_text("epoch: 2\n")
    (tmp_path / "empty").mkdir()
    args = [str(tmp_path / "c.yaml") if a == "CFG" else str(tmp_path / "empty") if a == "EMPTY" else a for a in args]
    r = search_here("run", *args, "--dir", str(tmp_path / "runs"))
    assert r.returncode == 2, r.stderr
    assert fragment in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()
