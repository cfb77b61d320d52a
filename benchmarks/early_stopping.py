"""What multi-objective early stopping saves and costs: the same search (same seed, same trials)
with --early-stop none and with --early-stop mo-asha, each on its own study, through the real
loop (2 workers: a local Ray). Prints training epochs and training CPU time, wall time, the
hypervolume of (error, latency, MACs) normalised over both runs' trials, and the best accuracy
under two latency budgets (the 25th and 50th percentile of all trained trials' latency).

    python benchmarks/early_stopping.py [--dataset fashion-mnist] [--train-subset 2000]
        [--resolution 14] [--epochs 9] [--trials 60] [--workers 2] [--min-epochs 1] [--eta 3]
        [--sampler hybrid] [--seed 0] [--dir DIR]

With --dir, a finished study there is reused (the full-budget run once for several settings of
the early-stopping run; each setting is its own study). Training CPU time is the sum of the
trials' train_seconds (each trial trains on one thread): the compute early stopping saves.
Wall time also holds screening, timing and start-up.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import optuna  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

from hwnas.evaluators.metrics import DEFAULT_OBJECTIVES, Metrics  # noqa: E402
from hwnas.search import attrs  # noqa: E402
from hwnas.search.config import RunConfig  # noqa: E402
from hwnas.search.early_stopping import rungs_of  # noqa: E402
from hwnas.search.loop import run_search  # noqa: E402
from hwnas.search.pareto import hypervolume, nondominated  # noqa: E402
from hwnas.search.report import render  # noqa: E402
from hwnas.search.study import journal_path, load_study  # noqa: E402

WALL = "benchmark_wall_s"  # kept on a finished study: --dir with it reuses the run (a full-budget run is long)


def run(method: str, args: argparse.Namespace, where: str) -> tuple[optuna.Study, float]:
    study_name = f"es-{method}" if method == "none" else f"es-{method}-r{args.min_epochs}-eta{args.eta}"
    config = RunConfig(dataset=args.dataset, train_subset=args.train_subset, resolution=args.resolution,
                       epochs=args.epochs, trials=args.trials, workers=args.workers, sampler=args.sampler,
                       seed=args.seed, early_stop=method, min_epochs=args.min_epochs, eta=args.eta,
                       objectives=DEFAULT_OBJECTIVES, dir=where, study=study_name)
    if journal_path(where, study_name).exists():
        study = load_study(where, study_name)
        if WALL in study.user_attrs and len(attrs.ended(study.get_trials(deepcopy=False))) >= args.trials:
            print(f"reusing the finished study {study_name!r} in {where}", file=sys.stderr)
            return study, study.user_attrs[WALL]
    t0 = time.perf_counter()
    study = run_search(config, track=False)
    study.set_user_attr(WALL, time.perf_counter() - t0)
    return study, study.user_attrs[WALL]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--train-subset", type=int, default=2000)
    p.add_argument("--resolution", type=int, default=14)
    p.add_argument("--epochs", type=int, default=9)
    p.add_argument("--trials", type=int, default=60)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--min-epochs", type=int, default=1)
    p.add_argument("--eta", type=int, default=3)
    p.add_argument("--sampler", default="hybrid")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dir", default="", help="keep the studies here (default: a temporary folder)")
    args = p.parse_args()
    where = args.dir or tempfile.mkdtemp(prefix="early-stopping-")
    runs = {method: run(method, args, where) for method in ("none", "mo-asha")}

    ended = {m: sorted(attrs.ended(s.get_trials(deepcopy=False)), key=lambda t: t.datetime_complete)
             for m, (s, _) in runs.items()}
    every = [Metrics.from_attrs(t.user_attrs) for ts in ended.values() for t in attrs.trained(ts)]
    scale = np.array([1.0, max(f.latency_ms for f in every), max(f.macs for f in every)])
    budgets = np.percentile([f.latency_ms for f in every], [25, 50])
    cpu = {m: sum(_cpu(t) for t in ts) for m, ts in ended.items()}
    rows = [_row(method, ended[method], runs[method][1], scale, budgets) for method in runs]
    # the anytime view: each run's trials in the order they ended, cut where its training CPU
    # reached a third of the full-budget run's, and the full-budget run cut at mo-asha's total
    rows.append(_row("mo-asha, first 1/3 of none's CPU", _until(ended["mo-asha"], cpu["none"] / 3), None, scale,
                     budgets))
    rows.append(_row("none, first trials of mo-asha's CPU", _until(ended["none"], cpu["mo-asha"]), None, scale,
                     budgets))
    none, asha = rows[:2]
    saved = cpu["none"] / max(cpu["mo-asha"], 1.0)
    hv = asha["hypervolume"] / none["hypervolume"]
    print(f"{args.dataset}, {args.train_subset or 'all'} training images"
          f"{f' at {args.resolution}x{args.resolution}' if args.resolution else ''}, {args.epochs} epochs, "
          f"{args.trials} trials, {args.workers} workers, sampler {args.sampler}, seed {args.seed}; mo-asha rungs "
          f"from {args.min_epochs} epoch(s), eta {args.eta}")
    print(render(rows, "table"))
    print(f"training compute: {saved:.2f}x less with mo-asha; hypervolume {hv:.4f} of the full-budget run's; "
          f"at a third of its compute {rows[2]['hypervolume'] / none['hypervolume']:.4f} (studies in {where})")
    reached = _reach(ended["mo-asha"], 0.99 * none["hypervolume"], scale)
    print("mo-asha's front came within 1 % of the full-budget run's final hypervolume "
          + (f"after {reached:.0f} s of training CPU: {cpu['none'] / max(reached, 1.0):.2f}x less than the full run"
             if reached is not None else "never"))
    print(rung_correlation([Metrics.from_attrs(t.user_attrs) for t in ended["none"]],
                           rungs_of(args.epochs, args.min_epochs, args.eta)))


def _cpu(trial: optuna.trial.FrozenTrial) -> float:
    """Training CPU seconds a trial spent (a duplicate spent none: its figures are another's)."""
    if attrs.DUPLICATE_OF in trial.user_attrs:
        return 0.0
    return Metrics.from_attrs(trial.user_attrs).train_seconds or 0.0


def _until(trials: list[optuna.trial.FrozenTrial], cpu: float) -> list[optuna.trial.FrozenTrial]:
    """The first of ``trials`` (in the order they ended) whose training CPU adds up to at most ``cpu``."""
    spent = np.cumsum([_cpu(t) for t in trials])
    return [t for t, s in zip(trials, spent) if s <= cpu]


def _hypervolume(trials: list[optuna.trial.FrozenTrial], scale: np.ndarray) -> float:
    """Hypervolume of the trained ``trials``' (error, latency, MACs), divided by ``scale``."""
    figures = [Metrics.from_attrs(t.user_attrs) for t in attrs.trained(trials)]
    losses = np.array([[1 - f.accuracy, f.latency_ms, f.macs] for f in figures]).reshape(-1, 3) / scale
    return hypervolume(nondominated(losses)) if len(losses) else 0.0


def _reach(trials: list[optuna.trial.FrozenTrial], target: float, scale: np.ndarray) -> float | None:
    """Training CPU seconds ``trials`` (in the order they ended) had spent when their front's
    hypervolume first reached ``target``; None if it never did."""
    spent = np.cumsum([_cpu(t) for t in trials])
    for k in range(len(trials)):
        if _hypervolume(trials[:k + 1], scale) >= target:
            return float(spent[k])
    return None


def _row(label: str, trials: list[optuna.trial.FrozenTrial], wall: float | None, scale: np.ndarray,
         budgets: np.ndarray) -> dict:
    figures = [Metrics.from_attrs(t.user_attrs) for t in attrs.trained(trials)]
    ran = [Metrics.from_attrs(t.user_attrs) for t in trials if attrs.DUPLICATE_OF not in t.user_attrs]
    row = {"early stop": label, "trained to the end": len(figures),
           "stopped": sum(t.state == optuna.trial.TrialState.PRUNED for t in trials),
           "epochs trained": sum(len(f.epoch_accuracy or ()) for f in ran),
           "train CPU s": round(sum(_cpu(t) for t in trials)),
           "wall s": round(wall) if wall is not None else "",
           "hypervolume": round(_hypervolume(trials, scale), 4)}
    for b in budgets:
        within = [f.accuracy for f in figures if f.latency_ms <= b]
        row[f"best acc <= {b:.3f} ms"] = round(max(within), 4) if within else None
    return row


def rung_correlation(figures: list[Metrics], rungs: tuple[int, ...]) -> str:
    """Spearman correlation of accuracy at each rung with the final accuracy, over the full-budget
    run's trials (every one trained to the end, so the sample is not filtered by the rungs)."""
    final = [f.accuracy for f in figures]
    parts = [f"epoch {r}: {spearmanr([f.epoch_accuracy[r - 1] for f in figures], final).statistic:.3f}"
             for r in rungs]
    return f"rank correlation with the final accuracy, {len(figures)} full-budget trials: {', '.join(parts)}"


if __name__ == "__main__":
    main()
