"""Search quality on NAS-Bench-201: HV / HV* after N trials, ours beside plain Optuna samplers.

For each data set, objective pair and sampler, runs ``--seeds`` searches of ``--trials`` trials
each (the table answers every trial; a repeated cell still costs a trial) and prints the
median and the worst HV / HV*. HV* is the hypervolume of the whole table: error = 1 - accuracy,
the cost divided by its largest value in the table, reference point (1, 1)
(the whole NAS-Bench-201 cifar10 table: 0.631877 for accuracy vs latency, 0.864394 vs model size).
It also prints the hybrid sampler's time per trial (ask + tell, setup included).

    OMP_NUM_THREADS=1 python benchmarks/search_quality.py [--seeds 10] [--trials 200]
        [--datasets cifar10,cifar100,imagenet] [--costs latency_ms,params]
        [--samplers hybrid,random,nsga2,tpe] [--format table|json|csv]
        [--devices shared|a.csv,b.csv|none]

``--devices shared --datasets none``: the device cases alone: cifar10 accuracy vs latency on each
device table, the hybrid sampler reading the whole table and predicting it (--predict-latency).
"""
from __future__ import annotations

import argparse
import glob
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import optuna  # noqa: E402

from hwnas.evaluators import Recipe, TrialSpec, evaluation_for, tabular  # noqa: E402
from hwnas.evaluators.device_table import device_latencies  # noqa: E402
from hwnas.evaluators.tabular import load_table, lookup  # noqa: E402
from hwnas.search.loop.trial import tell_complete  # noqa: E402
from hwnas.search.pareto import hypervolume  # noqa: E402
from hwnas.search.report import FORMATS, render  # noqa: E402
from hwnas.search.samplers.hybrid import HybridSampler, screen_for  # noqa: E402
from hwnas.spaces import (
    Evaluated,  # noqa: E402
    get_space,  # noqa: E402
)

# Plain Optuna, every setting at its default but the seed.
PLAIN = {
    "random": lambda seed: optuna.samplers.RandomSampler(seed=seed),
    "nsga2": lambda seed: optuna.samplers.NSGAIISampler(seed=seed),
    "tpe": lambda seed: optuna.samplers.TPESampler(multivariate=True, seed=seed),
}
DEVICES = Path(__file__).resolve().parents[2] / "shared" / "data" / "nb201-devices"


def table_hv(dataset: str, cost: str) -> tuple[float, float]:
    """HV* of the whole table, and the largest cost that normalises it."""
    rows = load_table(dataset).values()
    top = max(r.value(cost) for r in rows)
    return hypervolume(np.array([[1 - r.value("accuracy"), r.value(cost) / top] for r in rows])), top


def search(sampler_name: str, dataset: str, cost: str, seed: int, trials: int) -> dict:
    space, evaluation = get_space("nb201"), evaluation_for(Evaluated.TABLE, dataset)
    t_wall, t_cpu = time.perf_counter(), time.process_time()
    if sampler_name == "hybrid":
        sampler = HybridSampler(screen_for(space, evaluation), seed=seed)
    else:
        sampler = PLAIN[sampler_name](seed)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    study.set_metric_names(["accuracy", cost])
    asks = []
    for _ in range(trials):
        t0 = time.process_time()
        trial = study.ask()
        metrics = lookup(dataset, str(space.sample(trial)))
        study.tell(trial, [metrics.value("accuracy"), metrics.value(cost)])
        asks.append(time.process_time() - t0)
    values = np.array([t.values for t in study.trials])
    return {"values": values, "wall": (time.perf_counter() - t_wall) / trials,
            "cpu": (time.process_time() - t_cpu) / trials, "last": statistics.fmean(asks[-10:]),
            "screened": study.trials[-1].user_attrs.get("screened", 0)}


def device_hv(dataset: str, table_path: str) -> tuple[float, float]:
    """HV* of the whole table against a device's latency, and the largest latency there."""
    device, rows = device_latencies(table_path), load_table(dataset)
    top = max(device.values())
    return hypervolume(np.array([[1 - r.value("accuracy"), device[c] / top] for c, r in rows.items()])), top


def device_search(dataset: str, table_path: str, predict: bool, seed: int, trials: int) -> np.ndarray:
    """The hybrid sampler against a device's latency table, as `search run --latency-table` runs
    it: each trial told through the loop's own ``tell_complete`` (every figure stored, the
    prediction's error too); ``predict``: the screen predicts the device's latency from the
    cells timed so far (--predict-latency) instead of reading the whole table."""
    space = get_space("nb201")
    evaluation = evaluation_for(Evaluated.TABLE, dataset, latency_table=table_path, predict_latency=predict)
    sampler = HybridSampler(screen_for(space, evaluation, predict_latency=predict), seed=seed)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    study.set_metric_names(["accuracy", "latency_ms"])
    recipe = Recipe()
    for _ in range(trials):
        trial = study.ask()
        spec = TrialSpec(trial.number, str(space.sample(trial)), dataset, recipe, latency_table=table_path)
        tell_complete(study, trial, tabular.evaluate(spec).metrics, ("accuracy", "latency_ms"))
    return np.array([t.values for t in study.trials])


def device_rows(args: argparse.Namespace) -> list[dict]:
    rows = []
    tables = (sorted(glob.glob(str(DEVICES / "*.csv"))) if args.devices == "shared"
              else [t for t in args.devices.split(",") if t and t != "none"])
    for path in tables:
        hv_star, top = device_hv("cifar10", path)
        for predict in (True, False):
            runs = (device_search("cifar10", path, predict, seed, args.trials) for seed in range(args.seeds))
            scores = [hypervolume(np.column_stack([1 - v[:, 0], v[:, 1] / top])) / hv_star for v in runs]
            rows.append({"device": Path(path).stem, "sampler": "hybrid" + (" --predict-latency" if predict else ""),
                         "median": f"{statistics.median(scores):.4f}", "worst": f"{min(scores):.4f}",
                         "HV*": f"{hv_star:.6f}"})
            print(rows[-1], file=sys.stderr, flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--trials", type=int, default=200)
    p.add_argument("--datasets", default="cifar10,cifar100,imagenet")
    p.add_argument("--costs", default="latency_ms,params")
    p.add_argument("--samplers", default="hybrid," + ",".join(PLAIN))
    p.add_argument("--format", choices=FORMATS, default="table")
    p.add_argument("--devices", default="none",
                   help="device latency tables for the cifar10 device cases: 'shared' (the four in "
                        "../shared/data/nb201-devices), comma-separated CSVs, or none")
    args = p.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

    rows, timing = [], []
    for dataset in [d for d in args.datasets.split(",") if d and d != "none"]:
        for cost in args.costs.split(","):
            hv_star, top = table_hv(dataset, cost)
            for name in args.samplers.split(","):
                runs = [search(name, dataset, cost, seed, args.trials) for seed in range(args.seeds)]
                scores = [hypervolume(np.column_stack([1 - r["values"][:, 0], r["values"][:, 1] / top])) / hv_star
                          for r in runs]
                rows.append({"dataset": dataset, "objectives": f"accuracy,{cost}", "sampler": name,
                             "median": f"{statistics.median(scores):.4f}", "worst": f"{min(scores):.4f}",
                             "HV*": f"{hv_star:.6f}"})
                print(rows[-1], file=sys.stderr, flush=True)
                if name == "hybrid":
                    timing.append({"dataset": dataset, "objectives": f"accuracy,{cost}",
                                   "ms/trial wall": f"{1e3 * statistics.fmean(r['wall'] for r in runs):.1f}",
                                   "ms/trial cpu": f"{1e3 * statistics.fmean(r['cpu'] for r in runs):.1f}",
                                   "cpu ms/trial, last 10": f"{1e3 * statistics.fmean(r['last'] for r in runs):.1f}",
                                   "screened": runs[0]["screened"]})
    if rows:
        print(render(rows, args.format))
    devices = device_rows(args)
    if devices:
        print(f"\ncifar10, accuracy vs latency on a device (its table; HV* over all its cells), {args.trials} trials, "
              f"{args.seeds} seeds:")
        print(render(devices, args.format))
    if timing:
        print(f"\nhybrid sampler, time per trial (ask, lookup, tell) over {args.trials} trials, mean of {args.seeds} "
              "seeds, setup (screening the whole table once) included; and CPU time of the last 10 trials alone:")
        print(render(timing, args.format))
    return 0


if __name__ == "__main__":
    sys.exit(main())
