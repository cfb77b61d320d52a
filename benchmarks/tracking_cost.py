"""What MLflow logging costs the driver: milliseconds per trial, at the end of a run, and for a
`search sync` with nothing to add. A study of N trials with made-up metrics (real genotypes from
the mobile space) is logged to a fresh sqlite store in a temporary folder.

    python benchmarks/tracking_cost.py [--trials 50]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=50)
    n = ap.parse_args().trials
    tmp = Path(tempfile.mkdtemp(prefix="tracking-cost-"))
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp / 'mlflow.db'}"

    import numpy as np
    import optuna

    from hwnas.evaluators.trial import cached_dataset
    from hwnas.search.config import RunConfig
    from hwnas.search.observers.tracking import Tracker
    from hwnas.search.study import open_study
    from hwnas.spaces import get_space

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    config = RunConfig(study="bench", dir=str(tmp / "runs"), trials=n, sampler="random", epochs=1)
    study = open_study(config)
    space, shape = get_space("mobile"), cached_dataset("digits").input_shape
    rng = np.random.default_rng(0)

    rows = []
    t0 = time.perf_counter()
    tracker = Tracker(study, config)
    rows.append(("open a fresh store (creates the database)", (time.perf_counter() - t0) * 1e3))
    per_trial = []
    for _ in range(n):
        trial = study.ask()
        trial.set_user_attr("genotype", str(space.sample(trial, shape)))
        metrics = {"accuracy": float(rng.uniform(0.5, 1)), "test_accuracy": float(rng.uniform(0.5, 1)),
                   "latency_ms": float(rng.uniform(0.2, 2)), "macs": int(rng.integers(1e5, 1e7)),
                   "params": int(rng.integers(1e4, 1e6))}
        trial.set_user_attr("metrics", metrics)
        told = study.tell(trial, [metrics[o] for o in config.objectives])
        t0 = time.perf_counter()
        tracker(study, told)
        per_trial.append((time.perf_counter() - t0) * 1e3)
    t0 = time.perf_counter()
    tracker.close(study)
    rows.append(("end of run (front CSV, plot, hypervolume)", (time.perf_counter() - t0) * 1e3))
    t0 = time.perf_counter()
    again = Tracker(study, config)
    again.close(study)
    rows.append((f"sync with nothing to add ({n} runs there)", (time.perf_counter() - t0) * 1e3))
    assert tracker.error is None and again.error is None and again.created == 0, (tracker.error, again.error)

    shutil.rmtree(tmp)
    print(f"MLflow logging cost, {n} trials, fresh sqlite store in a temporary folder")
    print(f"{'what':<46} {'ms':>9}")
    print(f"{'one trial (median)':<46} {statistics.median(per_trial):>9.1f}")
    print(f"{'one trial (90th percentile)':<46} {np.percentile(per_trial, 90):>9.1f}")
    print(f"{'one trial (mean)':<46} {statistics.mean(per_trial):>9.1f}")
    for what, ms in rows:
        print(f"{what:<46} {ms:>9.1f}")


if __name__ == "__main__":
    main()
