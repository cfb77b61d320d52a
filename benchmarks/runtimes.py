"""What a network costs in each runtime it can ship in (torch eager, ONNX Runtime fp32, ONNX
Runtime static int8), measured side by side in one process: five front members of a digits study
(trained here, or --study NAME of --dir) and MobileNetV2 / MobileNetV3-Large at 224x224.

    python benchmarks/runtimes.py [--trials 30] [--epochs 5] [--study NAME --dir runs] [--threads 1]

Per network and runtime: batch-1 latency (median), throughput at batch 32, the shipped file's
size, peak memory, and validation accuracy in that runtime (int8: the change from fp32). The
MobileNets are untrained (ImageNet is not here): their accuracy is not shown.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import optuna  # noqa: E402
import torch  # noqa: E402

from hwnas.evaluators.memory import peak_memory_mb  # noqa: E402
from hwnas.evaluators.runtimes import RUNTIMES, runtime_costs, ship  # noqa: E402
from hwnas.evaluators.trial import trial_data  # noqa: E402
from hwnas.search.config import RunConfig  # noqa: E402
from hwnas.search.export.costs import measure, shipped_files  # noqa: E402
from hwnas.search.loop import run_search  # noqa: E402
from hwnas.search.pareto import front_trials  # noqa: E402
from hwnas.search.report import render  # noqa: E402
from hwnas.search.study import load_study, study_config  # noqa: E402
from hwnas.search.weights import weights_path  # noqa: E402
from hwnas.spaces import NAMED, build, parse  # noqa: E402


def _row(name: str, rt: str, figures: dict, fp32_accuracy: float | None) -> dict:
    accuracy = figures.get("accuracy")
    change = None if accuracy is None or fp32_accuracy is None or rt == "torch" else accuracy - fp32_accuracy
    return {"network": name, "runtime": rt, "latency_ms": round(figures["latency_ms"], 3),
            "throughput": round(figures["throughput"]), "model_kb": round(figures["model_kb"], 1),
            "peak_memory_mb": round(figures["peak_memory_mb"], 3),
            "accuracy": "-" if accuracy is None else round(accuracy, 4),
            "vs_torch": "-" if change is None else f"{change:+.4f}"}


def digits_members(args: argparse.Namespace) -> list[dict]:
    directory = args.dir or tempfile.mkdtemp(prefix="hwnas-runtimes-")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if not args.study:
        args.study = "runtimes"
        run_search(RunConfig(study=args.study, dir=directory, trials=args.trials, epochs=args.epochs,
                             workers=1, seed=args.seed), progress=False, track=False)
    study = load_study(directory, args.study)
    config = study_config(study)
    data = trial_data(config.dataset, config.data_dir, config.recipe())
    members = front_trials(study)
    picked = sorted({round(i * (len(members) - 1) / 4) for i in range(5)})  # five spread along the front
    rows = []
    for t in (members[i] for i in picked):
        model = build(parse(t.user_attrs["genotype"]), data.input_shape, data.num_classes)
        owner = t.user_attrs.get("duplicate_of", t.number)
        model.load_state_dict(torch.load(weights_path(directory, args.study, owner), weights_only=True))
        figures = measure(model, data, shipped_files(model, data), args.threads, 32)
        rows += [_row(f"digits trial {t.number}", rt, f, figures["torch"]["accuracy"]) for rt, f in figures.items()]
    return rows


def mobilenets(threads: int) -> list[dict]:
    rows = []
    for name in ("mobilenet_v2", "mobilenet_v3_large"):
        model = build(NAMED[name], (3, 224, 224), 1000)
        for rt in RUNTIMES:
            shipped = ship(model, (3, 224, 224), rt)
            figures = runtime_costs(model, (3, 224, 224), shipped, threads, 32).values()
            figures["peak_memory_mb"] = peak_memory_mb(model, (3, 224, 224), 1 if rt.endswith("int8") else 4)
            rows.append(_row(f"{name} 224", rt, figures, None))
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=30, help="trials of the digits search (default 30)")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--study", help="an existing study to take the members from (default: search here)")
    p.add_argument("--dir", default="", help="where --study lives")
    p.add_argument("--threads", type=int, default=1, help="threads of every runtime (default 1, as search run)")
    args = p.parse_args()
    rows = digits_members(args) + mobilenets(args.threads)
    print(render(rows, "table"))


if __name__ == "__main__":
    main()
