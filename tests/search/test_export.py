import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import torch
from torch import nn

from hwnas.evaluators import accuracy_of, count_macs, count_params, load_dataset
from hwnas.evaluators.budgets import Budget
from hwnas.evaluators.runtimes import RUNTIMES
from hwnas.search.config import RunConfig
from hwnas.search.errors import UsageError
from hwnas.search.export import PICKS, ExportRequest, export
from hwnas.search.loop import run_search
from hwnas.search.study import load_study, open_study
from hwnas.search.weights import weights_path
from hwnas.spaces import build, parse

pytestmark = pytest.mark.slow  # every test here trains networks

TORCH_SITE = str(Path(torch.__file__).resolve().parents[1])

# Runs in `python -I -S` (no site-packages, no PYTHONPATH, no editable installs) with only the
# export folder and torch's folder on the path: our packages must not be importable.
ISOLATED = """
import importlib, json, sys
sys.path[:] = [sys.argv[1], sys.argv[2]] + [p for p in sys.path if 'site-packages' not in p]
for name in ('hwnas', 'search', 'spaces', 'evaluators'):
    try:
        importlib.import_module(name)
        raise SystemExit(f'{name} is importable')
    except ImportError:
        pass
import torch
from torch.utils.flop_counter import FlopCounterMode
import model
net = model.Network()
net.load_state_dict(torch.load('weights.pt', weights_only=True))
net.eval()
x, val_x, val_y = torch.load(sys.argv[3])
with torch.no_grad():
    out = net(x)
    with FlopCounterMode(display=False) as counter:
        net(x[:1])
    correct = sum((net(val_x[i:i + 512]).argmax(1) == val_y[i:i + 512]).sum().item() for i in range(0, len(val_x), 512))
    rates = exit_accuracy = None
    if hasattr(net, 'predict_early_exit'):
        answers = [net.predict_early_exit(val_x[i:i + 1]) for i in range(len(val_x))]
        heads = [head for _, head in answers]
        rates = [heads.count(k) / len(heads) for k in range(len(net.exits) + 1)]
        exit_accuracy = sum(int(logits.argmax(1).item() == val_y[i].item())
                            for i, (logits, _) in enumerate(answers)) / len(val_x)
torch.save(out, sys.argv[4])
print(json.dumps({'params': sum(p.numel() for p in net.parameters()), 'macs': counter.get_total_flops() // 2,
                  'accuracy': correct / len(val_x), 'exit_rates': rates, 'exit_accuracy': exit_accuracy, 'torch': torch.__file__}))
"""


def run_isolated(out_dir: Path, genotype_text: str, data, tmp_path: Path) -> tuple[dict, torch.Tensor]:
    x = torch.randn(5, *data.input_shape, generator=torch.Generator().manual_seed(1))
    torch.save((x, data.val.images(), data.val.labels), tmp_path / "inputs.pt")
    r = subprocess.run([sys.executable, "-I", "-S", "-c", ISOLATED, str(out_dir), TORCH_SITE,
                        str(tmp_path / "inputs.pt"), str(tmp_path / "outputs.pt")],
                       cwd=out_dir, capture_output=True, text=True, timeout=120, env={"PATH": os.environ["PATH"]})
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout), x


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory):
    """A small real study: 3 trained trials, plus one FAIL trial."""
    d = tmp_path_factory.mktemp("runs")
    config = RunConfig(study="s", dir=str(d), trials=3, epochs=1, sampler="random", seed=3)
    run_search(config, progress=False, track=False)
    study = load_study(str(d), "s")
    failed = study.ask()
    failed.set_user_attr("fail_reason", "made to fail by the test")
    study.tell(failed, state=optuna.trial.TrialState.FAIL)
    return d


def test_driver_keeps_each_trained_trials_weights(study_dir):
    study = load_study(str(study_dir), "s")
    for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)):
        owner = t.user_attrs.get("duplicate_of", t.number)
        state = torch.load(weights_path(str(study_dir), "s", owner), weights_only=True)
        model = build(parse(t.user_attrs["genotype"]), (1, 8, 8), 10)
        model.load_state_dict(state)  # strict: every key and shape
        assert accuracy_of(model, load_dataset("digits").val) == t.user_attrs["accuracy"]


def _expected_pick(study, pick):
    """Recomputed here from the front's values, independently of search.export."""
    front = []
    for t in sorted(study.best_trials, key=lambda t: t.number):  # a repeated genotype counts once
        if t.user_attrs["genotype"] not in {m.user_attrs["genotype"] for m in front}:
            front.append(t)
    if pick == "max-accuracy":
        best = max(t.user_attrs["accuracy"] for t in front)
        return {t.number for t in front if t.user_attrs["accuracy"] == best}
    if pick == "min-latency":
        best = min(t.user_attrs["latency_ms"] for t in front)
        return {t.number for t in front if t.user_attrs["latency_ms"] == best}
    scaled = {}
    for t in front:
        d2 = 0.0
        for j, direction in enumerate(study.directions):
            col = [m.values[j] for m in front]
            span = max(col) - min(col)
            ideal = max(col) if direction == optuna.study.StudyDirection.MAXIMIZE else min(col)
            d2 += ((t.values[j] - ideal) / span) ** 2 if span else 0.0
        scaled[t.number] = math.sqrt(d2)
    return {n for n, v in scaled.items() if v == min(scaled.values())}


@pytest.mark.parametrize("pick", PICKS)
def test_each_pick_chooses_from_the_front(study_dir, tmp_path, pick):
    out = tmp_path / "out"
    lines = export(ExportRequest(study="s", dir=str(study_dir), pick=pick, out=str(out), report=pick == "max-accuracy"))
    meta = json.loads((out / "metadata.json").read_text())
    study = load_study(str(study_dir), "s")
    assert meta["trial"] in _expected_pick(study, pick)
    assert meta["chosen"].startswith(pick) and f"exported trial {meta['trial']}" in lines[0]
    # a report takes seconds (every runtime; the raw-images test reads one): one pick has it
    report = ["report.json", "report.txt"] if pick == "max-accuracy" else []  # --no-report: the ONNX file all the same
    assert sorted(p.name for p in out.iterdir()) == sorted(["metadata.json", "model.onnx", "model.py", "weights.pt",
                                                            *report])


def test_budget_picks_the_most_accurate_member_within_it(study_dir, tmp_path):
    study = load_study(str(study_dir), "s")
    front = study.best_trials
    budget = sorted(t.user_attrs["macs"] for t in front)[0]  # only the cheapest member(s) fit
    export(ExportRequest(study="s", dir=str(study_dir), budgets=(Budget("max_macs", budget),), out=str(tmp_path / "o"),
                         report=False))
    meta = json.loads((tmp_path / "o" / "metadata.json").read_text())
    within = [t for t in front if t.user_attrs["macs"] <= budget]
    assert meta["trial"] in {t.number for t in within
                             if t.user_attrs["accuracy"] == max(m.user_attrs["accuracy"] for m in within)}


def test_exported_code_is_standalone_and_equals_the_builder(study_dir, tmp_path, search_here):
    out = tmp_path / "export"
    r = search_here("export", "--study", "s", "--dir", str(study_dir), "--pick", "max-accuracy", "--out", str(out),
                    "--no-report")
    assert r.returncode == 0, r.stderr
    assert "trained weights" in r.stdout and "model.onnx" in r.stdout
    meta = json.loads((out / "metadata.json").read_text())
    trial = load_study(str(study_dir), "s").trials[meta["trial"]]
    assert meta["genotype"] == trial.user_attrs["genotype"] and meta["weights"]["source"] == "trial"
    assert meta["input_shape"] == [1, 8, 8] and meta["num_classes"] == 10 and meta["dataset"] == "digits"
    source = (out / "model.py").read_text()
    assert "import torch" in source and "search" not in source.split('"""', 2)[2].split("class Network")[0]
    assert "class InvertedResidual" in source or "class StandardConv" in source
    assert "self.stages = nn.ModuleList([" in source and "x = self.stages[0](x)" in source

    data = load_dataset("digits")
    got, x = run_isolated(out, meta["genotype"], data, tmp_path)
    assert got["torch"] == torch.__file__
    ours = build(parse(meta["genotype"]), data.input_shape, data.num_classes)
    ours.load_state_dict(torch.load(weights_path(str(study_dir), "s", meta["weights"]["trial"]), weights_only=True))
    ours.eval()
    with torch.no_grad():
        assert torch.allclose(torch.load(tmp_path / "outputs.pt"), ours(x), atol=1e-5)
    assert got["params"] == count_params(ours) == trial.user_attrs["params"]
    assert got["macs"] == count_macs(ours, data.input_shape) == trial.user_attrs["macs"]
    assert got["accuracy"] == trial.user_attrs["accuracy"] == accuracy_of(ours, data.val)


def test_raw_images_through_preprocess_reproduce_the_trials_accuracy(study_dir, tmp_path):
    """A new user's path: raw digits as scikit-learn gives them (0-16), model.py's preprocess, the
    exported network: the trial's validation accuracy. The raw split is made here, not by hwnas."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    out = tmp_path / "o"
    export(ExportRequest(study="s", dir=str(study_dir), pick="max-accuracy", out=str(out)))
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["preprocessing"]["raw"].startswith("scikit-learn") and len(meta["preprocessing"]["mean"]) == 1
    d = load_digits()  # the split documented in docs/cli.md: 20 % test, then 25 % of the rest for validation
    x_rest, _, y_rest, _ = train_test_split(d.images[:, None], d.target, test_size=0.2, stratify=d.target,
                                            random_state=0)
    _, raw_val, _, val_y = train_test_split(x_rest, y_rest, test_size=0.25, stratify=y_rest, random_state=0)
    module = _load(out / "model.py")
    net = module.Network()
    net.load_state_dict(torch.load(out / "weights.pt", weights_only=True))
    with torch.no_grad():
        predicted = net.eval()(module.preprocess(raw_val)).argmax(1).numpy()
    accuracy = float((predicted == val_y).mean())
    trial = load_study(str(study_dir), "s").trials[meta["trial"]]
    assert abs(accuracy - trial.user_attrs["accuracy"]) <= 1 / len(val_y)  # float32 vs float64 standardising
    report = json.loads((out / "report.json").read_text())["runtimes"]
    assert set(report) == set(RUNTIMES)  # every runtime installed here (the tests install executorch)
    assert report["onnxruntime-int8"]["model_kb"] < report["onnxruntime"]["model_kb"]
    assert report["torch"]["accuracy"] == trial.user_attrs["accuracy"]


def _load(path: Path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("exported_model", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_duplicate_points_at_the_original_weights_and_retrain(study_dir, tmp_path):
    study_dir = shutil.copytree(study_dir, tmp_path / "runs")  # this test adds a trial
    study = load_study(str(study_dir), "s")
    original = min(study.best_trials, key=lambda t: t.user_attrs["macs"])  # quickest to retrain
    study.add_trial(optuna.trial.create_trial(
        values=original.values, user_attrs={**original.user_attrs, "duplicate_of": original.number}))
    dup = study.trials[-1].number
    export(ExportRequest(study="s", dir=str(study_dir), trial=dup, out=str(tmp_path / "d"), report=False))
    meta = json.loads((tmp_path / "d" / "metadata.json").read_text())
    assert meta["trial"] == dup and meta["weights"]["trial"] == original.number

    lines = export(ExportRequest(study="s", dir=str(study_dir), trial=original.number, retrain_epochs=1, report=False,
                                 out=str(tmp_path / "r")))
    meta = json.loads((tmp_path / "r" / "metadata.json").read_text())
    assert meta["weights"]["source"] == "retrained" and meta["weights"]["data"] == "train+validation"
    assert meta["weights"]["recipe"]["epochs"] == 1 and "retrained on train+validation" in lines[2]
    retrained = torch.load(tmp_path / "r" / "weights.pt", weights_only=True)
    kept = torch.load(weights_path(str(study_dir), "s", original.number), weights_only=True)
    assert any(not torch.equal(retrained[k], kept[k]) for k in kept)


def test_a_bad_request_on_the_command_line_is_one_line_exit_2(study_dir, tmp_path, search_here):
    failed = next(t.number for t in load_study(str(study_dir), "s").trials if t.state.name == "FAIL")
    r = search_here("export", "--study", "s", "--dir", str(study_dir), "--trial", str(failed), "--out", str(tmp_path / "out"))
    assert r.returncode == 2
    assert r.stderr.strip() == (f"search: error: trial {failed} of study 's' is FAIL, not COMPLETE: "
                                "made to fail by the test")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("request_args,fragment", [
    ({"study": "nope"}, "no study 'nope'"),
    ({"trial": 99}, "has no trial 99"),
    ({"budgets": (Budget("max_latency_ms", 1e-6),)}, "no front member meets --max-latency-ms 1e-06"),
    ({"budgets": (Budget("max_latency_ms", 1e-6), Budget("max_macs", 10))},
     "no front member meets --max-latency-ms 1e-06 and --max-macs 10"),
    ({"budgets": (Budget("max_macs", 0),)}, "--max-macs must be a positive number"),
    ({"trial": 0, "budgets": (Budget("max_macs", 5),)}, "--trial names one trial"),
    ({"pick": "best"}, "unknown --pick 'best'"),
])
def test_bad_requests_write_nothing(study_dir, tmp_path, request_args, fragment):
    with pytest.raises(UsageError, match=re.escape(fragment)):
        export(ExportRequest(**{"study": "s", "dir": str(study_dir), "out": str(tmp_path / "out"), **request_args}))
    assert list(tmp_path.iterdir()) == []


def test_out_must_be_new_or_empty(study_dir, tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(UsageError, match="not an empty folder"):
        export(ExportRequest(study="s", dir=str(study_dir), out=str(tmp_path / "full")))
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["keep.txt"]


# An early-exit architecture of the mobile space (exits after stages 1 and 2), enqueued so the
# search trains exactly it.
EXIT_PARAMS = {"stem_width": 8, "act": "relu", "head_width": 128, "exit1_width": 32, "exit2_width": 32,
               **{f"s{i}_{k}": v for i, (depth, width, kind) in enumerate([(1, 8, "ds"), (1, 16, "ds"),
                                                                           (2, 32, "ir"), (2, 48, "ir")])
                  for k, v in (("depth", depth), ("width", width), ("kind", kind), ("kernel", 3),
                               ("expansion", 4), ("se", 0.0))}}


@pytest.fixture(scope="module")
def exit_trial(tmp_path_factory):
    """A real --exits study whose one trial is EXIT_PARAMS, trained for 3 epochs."""
    config = RunConfig(study="e", dir=str(tmp_path_factory.mktemp("exit-runs")), trials=1, epochs=3,
                       sampler="random", exits=True, exit_tolerance=0.05)
    open_study(config).enqueue_trial(EXIT_PARAMS)
    run_search(config, progress=False, track=False)
    return config.dir, load_study(config.dir, "e").trials[0]


def _independent_exit_macs(model, shape):
    """Per-head cumulative MACs from the built modules piece by piece: the stages up to each exit
    as one Sequential, plus every head passed on its own feature map."""
    cumulative, heads = [], 0
    for k, after in enumerate(model.exit_after):
        prefix = nn.Sequential(model.stem, *model.stages[:after + 1]).eval()
        heads += count_macs(model.exits[k], tuple(prefix(torch.zeros(1, *shape)).shape[1:]))
        cumulative.append(count_macs(prefix, shape) + heads)
    return cumulative + [count_macs(model, shape) + heads]


def test_expected_macs_match_an_independent_count(exit_trial):
    _, trial = exit_trial
    a = trial.user_attrs
    model = build(parse(a["genotype"]), (1, 8, 8), 10)
    cumulative = _independent_exit_macs(model, (1, 8, 8))
    assert a["exit_macs"] == cumulative and cumulative[0] < cumulative[1] < a["macs"] < cumulative[2]
    assert len(a["exit_rates"]) == 3 and sum(a["exit_rates"]) == pytest.approx(1.0)
    assert a["expected_macs"] == pytest.approx(sum(r * c for r, c in zip(a["exit_rates"], cumulative)))
    assert trial.values[2] == a["macs"] and a["expected_latency_ms"] > 0


def test_exported_exits_reproduce_the_recorded_exit_rates(exit_trial, tmp_path):
    directory, trial = exit_trial
    a = trial.user_attrs
    assert a["genotype"].count("exit_c32") == 2 and a["exit_tolerance"] == 0.05
    assert a["accuracy"] >= a["accuracy_full"] - 0.05 - 1e-9
    out = tmp_path / "export"
    lines = export(ExportRequest(study="e", dir=directory, trial=trial.number, out=str(out), report=False))
    assert any(line.startswith("early exits: model.py's predict_early_exit") for line in lines)
    source = (out / "model.py").read_text()
    assert f"EXIT_THRESHOLD = {a['exit_threshold']!r}" in source and "def predict_early_exit" in source
    got, _ = run_isolated(out, a["genotype"], load_dataset("digits"), tmp_path)
    assert got["exit_rates"] == a["exit_rates"] and got["exit_accuracy"] == a["accuracy"]
    assert got["accuracy"] == a["accuracy_full"] and got["macs"] == a["macs"]
    assert 0 < a["exit_rates"][-1] < 1  # some inputs leave early, some go the full depth
