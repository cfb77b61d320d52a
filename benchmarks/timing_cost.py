"""What honest latency costs a parallel run: how long the quiet gate halts the trainers so that a
model is timed alone, and what screening a sampler's pool in one quiet phase saves.

    python benchmarks/timing_cost.py [--trials 24] [--epochs 3] [--workers 2] [--repeats 3] [--exits]

Searches on a local Ray (mobile space, digits, the hybrid sampler, no early stopping, seed 0),
each made twice in a row: with the pool's timings in one quiet phase (``evaluators.trial.
SCREEN_PHASE``, the default) and with a phase per candidate (as before it). For each: the span
from the first trial's start to the last one's end, trials per hour, the gate's timings (the search
process's: screening), the seconds the trainers were halted for them (``held``) and of those the
seconds spent waiting for the trainers to park, and the search process's share of the halt
('driver'). Prints each run, then the medians per variant.
Timings are only as quiet as the machine: run it with nothing else running.
"""
from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import warnings
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def one_run(phase: int, trials: int, epochs: int, workers: int, where: str, name: str, exits: bool = False) -> dict:
    import optuna

    from hwnas.evaluators import trial as trial_module
    from hwnas.search import attrs
    from hwnas.search.config import RunConfig
    from hwnas.search.executors.quiet_gate import PlaceStats
    from hwnas.search.executors.ray import RayExecutor
    from hwnas.search.loop import run_search
    from hwnas.search.study import load_study

    trial_module.SCREEN_PHASE = phase  # the search process screens: its module is the one that counts
    config = RunConfig(space="mobile", dataset="digits", trials=trials, epochs=epochs, workers=workers,
                       dir=where, study=name, seed=0, early_stop="none", exits=exits)
    executor = RayExecutor(workers)
    run_search(config, executor, track=False, progress=False)
    done = [t for t in load_study(where, name).trials if t.state == optuna.trial.TrialState.COMPLETE]
    spans = attrs.spans(done)
    span = max(e for _, e in spans) - min(s for s, _ in spans)
    # the gate's account over the node (PlaceStats' fields)
    gate = asdict(PlaceStats.total(executor.timing_costs.values()))
    return {"phase": phase, "trials": len(done), "span": span, "per_hour": len(done) / span * 3600, **gate}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=24, help="trials per search (default 24; the first 10 "
                        "are the sampler's random start-up, one candidate each)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="pairs of runs (default 3)")
    parser.add_argument("--exits", action="store_true", help="search early-exit heads too (their dynamic run "
                        "is timed after training)")
    args = parser.parse_args()
    import optuna
    import ray

    from hwnas.evaluators.trial import SCREEN_PHASE

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    ray.init(address="local", num_cpus=args.workers, include_dashboard=False, log_to_driver=False,
             logging_level=logging.ERROR, object_store_memory=128 * 2**20)
    rows = []
    print(f"{args.workers} workers on a local Ray, mobile space{' with exits' if args.exits else ''}, digits, "
          f"{args.trials} trials of {args.epochs} epochs, hybrid sampler, seed 0; 'halted': the trainers parked for "
          f"timings (s)")
    print(f"{'pool timed in':<18} {'trials':>6} {'span s':>7} {'trials/h':>8} {'timings':>8} {'driver':>6} "
          f"{'halted':>7} {'driver':>7} {'parking':>7} {'halted %':>8}")
    with tempfile.TemporaryDirectory() as where:
        for repeat in range(args.repeats):
            for phase in (SCREEN_PHASE, 1):
                r = one_run(phase, args.trials, args.epochs, args.workers, where, f"r{repeat}_p{phase}", args.exits)
                rows.append(r)
                print(f"{label(phase):<18} {r['trials']:>6} {r['span']:>7.1f} {r['per_hour']:>8.0f} "
                      f"{r['timings']:>8} {r['by_driver']:>6} {r['held']:>7.1f} {r['driver_held']:>7.1f} "
                      f"{r['parking']:>7.1f} "
                      f"{100 * r['held'] / r['span']:>7.0f}%", flush=True)
    ray.shutdown()
    print("\nmedians")
    for phase in (SCREEN_PHASE, 1):
        mine = [r for r in rows if r["phase"] == phase]

        def med(key: str, mine: list = mine) -> float:
            return statistics.median(r[key] for r in mine)
        print(f"{label(phase):<18} {'':>6} {med('span'):>7.1f} {med('per_hour'):>8.0f} {med('timings'):>8.0f} "
              f"{med('by_driver'):>6.0f} {med('held'):>7.1f} {med('driver_held'):>7.1f} {med('parking'):>7.1f} "
              f"{100 * statistics.median(r['held'] / r['span'] for r in mine):>7.0f}%")
    return 0


def label(phase: int) -> str:
    return "a phase per pool" if phase > 1 else "a phase each"


if __name__ == "__main__":
    sys.exit(main())
