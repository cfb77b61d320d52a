"""``search export``: pick a member of a study's front and write it out as code the user owns
(``model.py``, ``weights.pt``, ``metadata.json``, ``model.onnx``)."""
from __future__ import annotations

import importlib.util
import json
import math
import os
import shutil
import tempfile
from dataclasses import asdict, replace
from pathlib import Path
from types import ModuleType
from typing import Any

import optuna
import torch

from hwnas.evaluators import Recipe, accuracy_of, count_macs, count_params, train
from hwnas.evaluators.data import Dataset, Split, crop_flip
from hwnas.evaluators.metrics import REGISTRY, Metrics
from hwnas.evaluators.runtimes import CALIBRATION_IMAGES, FILES, RUNTIMES, is_int8
from hwnas.evaluators.trial import trial_data
from hwnas.spaces import Evaluated, Genotype, Network, build, get_space, parse

from .. import attrs
from ..config import RunConfig
from ..errors import UsageError
from ..pareto import budgets_of, front_trials
from ..study import study_config
from ..weights import weights_path
from .costs import measure, shipped_files, write_report
from .modelcode import model_source
from .request import ExportRequest

# ---- which trial ---------------------------------------------------------------------------------

def knee(members: list[optuna.trial.FrozenTrial],
         directions: list[optuna.study.StudyDirection]) -> optuna.trial.FrozenTrial:
    """The member closest to the ideal point once each objective is scaled to [0, 1] over the
    members (0 = the best value among them, 1 = the worst)."""
    def scaled(t: optuna.trial.FrozenTrial) -> float:
        total = 0.0
        for j, direction in enumerate(directions):
            column = [m.values[j] for m in members]
            lo, hi = min(column), max(column)
            if hi > lo:
                best = hi if direction == optuna.study.StudyDirection.MAXIMIZE else lo
                total += (abs(t.values[j] - best) / (hi - lo)) ** 2
        return math.sqrt(total)

    return min(members, key=lambda t: (scaled(t), t.number))


def _figures(t: optuna.trial.FrozenTrial) -> tuple[float, float, int]:
    """Accuracy, latency and MACs of a trained trial (every one of them records all three)."""
    m = Metrics.from_attrs(t.user_attrs)
    if m.accuracy is None or m.latency_ms is None or m.macs is None:
        raise UsageError(f"trial {t.number} lacks accuracy, latency or MACs: was it trained?")
    return m.accuracy, m.latency_ms, m.macs


def _most_accurate(members: list[optuna.trial.FrozenTrial]) -> optuna.trial.FrozenTrial:
    return min(members, key=lambda t: (-_figures(t)[0], _figures(t)[1], t.number))


def _fastest(members: list[optuna.trial.FrozenTrial]) -> optuna.trial.FrozenTrial:
    return min(members, key=lambda t: (_figures(t)[1], -_figures(t)[0], t.number))


def choose(study: optuna.Study, request: ExportRequest) -> tuple[optuna.trial.FrozenTrial, str]:
    """The trial to export and why it was chosen; UsageError when the request cannot be met."""
    if request.trial is not None:
        trials = study.get_trials(deepcopy=False)
        if not 0 <= request.trial < len(trials):
            raise UsageError(f"study {study.study_name!r} has no trial {request.trial} "
                             f"(trials are numbered 0 to {len(trials) - 1})")
        t = trials[request.trial]
        if t.state != optuna.trial.TrialState.COMPLETE:
            why = f": {t.user_attrs[attrs.FAIL_REASON]}" if attrs.FAIL_REASON in t.user_attrs else ""
            raise UsageError(f"trial {t.number} of study {study.study_name!r} is {t.state.name}, not COMPLETE{why}")
        if attrs.rejected(t):
            raise UsageError(f"trial {t.number} of study {study.study_name!r} was never trained: over budget "
                             f"({t.user_attrs[attrs.REJECTED]})")
        return t, f"trial {t.number} as asked"
    members = front_trials(study)
    if not members:
        raise UsageError(f"study {study.study_name!r} has no COMPLETE trial to export")
    within = members
    if request.budgets:  # the front of the trained trials within the run's budgets and these
        asked = {b.key: b for b in (*budgets_of(study), *request.budgets)}
        within = front_trials(study, tuple(asked.values()))
    if not within:
        spans = []
        for b in request.budgets:
            metric = REGISTRY[b.metric]
            values = [Metrics.from_attrs(t.user_attrs).value(b.metric) for t in members]
            spans.append(f"{b.metric} {metric.show(min(values))}-{metric.show(max(values))}")
        raise UsageError(f"no front member meets {' and '.join(f'{b.flag} {b.limit:g}' for b in request.budgets)}: "
                         f"the front's {len(members)} members span {', '.join(spans)}")
    pick = request.pick or ("max-accuracy" if request.budgets else "knee")
    chosen = {"knee": lambda m: knee(m, study.directions), "max-accuracy": _most_accurate,
              "min-latency": _fastest}[pick](within)
    scope = f"the {len(within)} front members within budget" if request.budgets \
        else f"{len(members)} front members"
    return chosen, f"{pick} of {scope}"


# ---- which weights -------------------------------------------------------------------------------

def _recipe(study: optuna.Study) -> Recipe:
    return study_config(study).recipe()


def _trained(genotype: Genotype, data: Dataset, recipe: Recipe, on: Split) -> Network:
    torch.manual_seed(recipe.seed)  # as evaluators.trial.evaluate does
    augment = crop_flip if recipe.augment and data.augmentable else None
    return train(build(genotype, data.input_shape, data.num_classes), on, recipe, augment=augment)


def _weights(request: ExportRequest, study: optuna.Study, trial: optuna.trial.FrozenTrial, genotype: Genotype,
             data: Dataset) -> tuple[Network, dict]:
    """The model with its weights, and how they came about (for the output and the metadata)."""
    recipe = _recipe(study)
    if request.retrain_epochs:
        recipe = replace(recipe, epochs=request.retrain_epochs)
        model = _trained(genotype, data, recipe, data.train.joined(data.val))
        return model, {"source": "retrained", "data": "train+validation", "recipe": asdict(recipe),
                       **Metrics(test_accuracy=accuracy_of(model, data.test)).values(),
                       "note": "validation data was trained on: only test accuracy describes these weights"}
    owner = trial.user_attrs.get(attrs.DUPLICATE_OF, trial.number)
    path = weights_path(request.dir, request.study, owner)
    if path.exists():
        model = build(genotype, data.input_shape, data.num_classes)
        try:  # weights_only: a file that holds code is refused, not run
            model.load_state_dict(torch.load(path, weights_only=True))
        except Exception as e:  # empty, truncated, not a state dict, another network's
            reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
            raise UsageError(f"trial {owner}'s weights {path} do not load into its network ({type(e).__name__}: "
                             f"{reason}); delete the file and export again to retrain it from its recipe") from None
        return model.eval(), {"source": "trial", "trial": owner, "path": str(path), "data": "train",
                              "recipe": asdict(recipe)}
    model = _trained(genotype, data, recipe, data.train)
    return model, {"source": "retrained", "data": "train", "recipe": asdict(recipe),
                   "note": f"trial {owner}'s weights were not kept ({path} missing): retrained with its recipe",
                   **Metrics(accuracy=accuracy_of(model, data.val),
                             test_accuracy=accuracy_of(model, data.test)).values()}


# ---- writing -------------------------------------------------------------------------------------

def _load_module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"hwnas_export_{os.getpid()}", path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {path} as a module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write(tmp: Path, model: Network, trial: optuna.trial.FrozenTrial, genotype: Genotype, data: Dataset,
           metadata: dict, config: RunConfig, report: bool) -> list[str]:
    int8 = is_int8(config.runtime)
    threshold = Metrics.from_attrs(trial.user_attrs).exit_threshold
    title = f"Trial {trial.number} of study {metadata['study']!r}, exported by hwnas `search export`"
    (tmp / "model.py").write_text(model_source(genotype, data.input_shape, data.num_classes, threshold, title,
                                               data.mean, data.std, data.raw))
    torch.save(model.state_dict(), tmp / "weights.pt")
    # Check the written code against the builder before handing it over.
    exported = _load_module(tmp / "model.py").Network()
    exported.load_state_dict(torch.load(tmp / "weights.pt", weights_only=True))
    x = torch.randn(2, *data.input_shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        if not torch.allclose(exported.eval()(x), model.eval()(x), atol=1e-5):
            raise RuntimeError("exported model.py disagrees with the builder's network")
    # The TorchScript-based exporter: quiet and ~0.3 s; the dynamo one takes ~7 s here. With the
    # report, every runtime installed; without, the ONNX files only.
    onnx = ("onnxruntime", "onnxruntime-int8") if int8 else ("onnxruntime",)  # the files that ship
    files = shipped_files(model, data, RUNTIMES if report else onnx)
    notes = ["model.onnx: the full-depth forward" + (" (early exits are in model.py only)" if len(model.exits) else "")]
    for rt in onnx:
        (tmp / FILES[rt]).write_bytes(files[rt].file)
    if int8:
        notes.append(f"{FILES['onnxruntime-int8']}: static int8 (QDQ), calibrated on {CALIBRATION_IMAGES} training "
                     f"images: what the study measured")
    if report:
        rows = measure(model, data, files, config.threads, config.throughput_batch)
        table = write_report(tmp, rows, config.threads, config.throughput_batch)
        notes.append(f"report.txt: every runtime's cost on this machine:\n{table}")
        metadata["runtimes"] = rows
    metadata["files"] = sorted([p.name for p in tmp.iterdir()] + ["metadata.json"])
    (tmp / "metadata.json").write_text(json.dumps(metadata, indent=2) + "\n")
    return notes


def _exit_note(m: Metrics) -> list[str]:
    if m.exit_rates is None or m.exit_threshold is None or m.accuracy is None or m.accuracy_full is None:
        return []
    return [f"early exits: model.py's predict_early_exit leaves at softmax confidence >= "
            f"{m.exit_threshold:.4f}; validation exit rates "
            f"{'/'.join(f'{r:.3f}' for r in m.exit_rates)} (main head last), accuracy "
            f"{m.accuracy:.4f} vs {m.accuracy_full:.4f} at full depth"]


def export(request: ExportRequest, study: optuna.Study) -> list[str]:
    """Write the chosen member of ``study`` (the one ``request`` names) to ``request.out``; return
    the lines to show the user. Nothing is written when the request is refused or fails (the files
    go to a temporary folder first)."""
    config = study_config(study)
    if get_space(config.space).evaluated is not Evaluated.TRAINED:
        raise UsageError(f"study {request.study!r} is of space {config.space}, read from a table: it has no "
                         f"trained network to export")
    trial, reason = choose(study, request)
    out = Path(request.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"--out {out} exists and is not an empty folder; name a new one")
    try:  # before any work: a place it cannot write is a bad request, said at once
        out.parent.mkdir(parents=True, exist_ok=True)
        os.rmdir(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))  # as the writing will
    except OSError as e:
        raise UsageError(f"cannot write --out {out}: {e.strerror or e} ({out.parent})") from None
    data = trial_data(config.dataset, config.data_dir, config.recipe())  # as the trials saw it
    genotype = parse(trial.user_attrs[attrs.GENOTYPE])
    model, weights = _weights(request, study, trial, genotype, data)
    figures = Metrics.from_attrs(trial.user_attrs)
    model.eval()
    metadata: dict[str, Any] = {
        "study": request.study, "trial": trial.number, "chosen": reason, "genotype": str(genotype),
        "metrics": figures.values(),
        "objectives": study.metric_names, "dataset": data.name, "input_shape": list(data.input_shape),
        "num_classes": data.num_classes,
        # model.py's preprocess(): (raw - mean) / std per channel, then resized to input_shape
        "preprocessing": {"mean": list(data.mean), "std": list(data.std), "raw": data.raw},
        "runtime": config.runtime,
        "classes": list(data.classes or (str(i) for i in range(data.num_classes))),
        # the exported network's own counts (the builder's), and its exit threshold when it has exits
        **Metrics(params=count_params(model), macs=count_macs(model, data.input_shape),
                  exit_threshold=figures.exit_threshold).values(),
        "weights": weights,
    }
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private; the result is an ordinary folder
        notes = _write(tmp, model, trial, genotype, data, metadata, config, request.report)
        if out.exists():
            out.rmdir()
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    accuracy_, latency_ms, macs = _figures(trial)
    retrained = Metrics.from_attrs(weights)
    how = (f"trial {weights['trial']}'s trained weights ({weights['path']})" if weights["source"] == "trial"
           else f"retrained on {weights['data']} for {weights['recipe']['epochs']} epochs "
                f"(test accuracy {retrained.test_accuracy or 0:.4f})")
    return [f"exported trial {trial.number} ({reason}): accuracy {accuracy_:.4f}, "
            f"latency {latency_ms:.3f} ms, {macs:,} MACs, {figures.params or 0:,} params",
            f"genotype: {genotype}", f"weights: {how}", *notes, *_exit_note(figures),
            f"wrote {out}/: {', '.join(metadata['files'])}"]
