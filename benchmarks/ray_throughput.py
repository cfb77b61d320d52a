"""Trials per hour with 1 and N workers, and whether latency stays honest during a parallel run.

    python benchmarks/ray_throughput.py [--trials 200] [--epochs 10] [--workers 2] [--latency-trials 20]
                                        [--reference GENOTYPE]

1. Throughput: the default mobile/digits search (`search run`, 200 trials, same seed) with
   --workers 1 (this process, all cores) and --workers N (Ray, one core each); whole-run wall time
   of the real command, Ray's start included. The two runs train different networks (the sampler
   sees results in a different order), so short runs are noisy: keep the default.
   Beside it, the bound: 12 sampled networks trained alone (no search, no timing), one after
   another with all cores, then split over N processes of one core.
2. Latency: one fixed reference model at 1x8x8, 10 classes, timed as trials time (one thread):
   - idle: measured alone in a fresh process, as `search inspect` does (one just before and one
     just after the run below);
   - in run, gated: measured inside each trial of an N-worker run, in the trial's quiet phase
     (the path every trial's own latency takes);
   - in run, no gate: measured in the same trials just after, without the quiet phase, while the
     other workers go on training (what the gate prevents).
Print a table. Timings are only as quiet as the machine: run it with nothing else running.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

REFERENCE = "stem_c16_k3_s1_relu, ir_r2_k3_s1_e4_c24_relu, ir_r2_k5_s2_e4_c32_se0.25_relu, " \
            "ds_r2_k3_s2_c48_relu, conv_r1_k3_s1_c64_relu, head_c128_relu"


def reference_latency_ms(genotype: str) -> float:
    """The reference model's batch-1 latency in this process, with the threads trials time with."""
    from evaluators import measure_latency
    from search.config import RunConfig
    from spaces import build, parse

    threads = RunConfig.threads  # the default of `search run --threads`
    return measure_latency(build(parse(genotype), (1, 8, 8), 10), (1, 8, 8), threads=threads).median_ms


def with_reference(genotype: str):
    """An evaluate(spec) that also times the reference model in the trial's quiet phase."""
    import functools

    return functools.partial(_evaluate_with_reference, genotype)


def _evaluate_with_reference(genotype: str, spec):
    from evaluators import evaluate, quiet

    result = evaluate(spec)
    with quiet.measuring():
        result.metrics["reference_gated_ms"] = reference_latency_ms(genotype)
    result.metrics["reference_ungated_ms"] = reference_latency_ms(genotype)  # the other trials train on
    return result


def timed_run(workers: int, trials: int, epochs: int, directory: str) -> float:
    cmd = [sys.executable, "-m", "search", "run", "--trials", str(trials), "--epochs", str(epochs),
           "--workers", str(workers), "--study", f"w{workers}", "--dir", directory]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{r.stderr}")
    return wall


IDLE_PROBE = f"""
import sys; sys.path.insert(0, {str(ROOT)!r})
sys.path.insert(0, {str(ROOT / 'benchmarks')!r})
from ray_throughput import reference_latency_ms
for _ in range(int(sys.argv[2])):
    print(reference_latency_ms(sys.argv[1]), flush=True)
"""


TRAIN_PROBE = f"""
import sys, time; sys.path.insert(0, {str(ROOT)!r})
import optuna, torch
from evaluators.trial import trial_data
from evaluators.training import Recipe, train
from spaces import build, get_space, parse
optuna.logging.set_verbosity(optuna.logging.WARNING)
threads, part, parts, count, epochs = map(int, sys.argv[1:])
torch.set_num_threads(threads)
recipe = Recipe(epochs=epochs)
data = trial_data("digits", "", recipe)
study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
genotypes = [str(get_space("mobile").sample(study.ask(), data.input_shape)) for _ in range(count)]
t0 = time.perf_counter()
for g in genotypes[part::parts]:
    train(build(parse(g), data.input_shape, data.num_classes), data.train, recipe)
print(time.perf_counter() - t0)
"""


def training_alone(workers: int, count: int, epochs: int) -> tuple[float, float]:
    """Seconds to train the same ``count`` sampled networks one after another with all cores, and
    split over ``workers`` processes of one thread each at once: the most parallel trials can gain."""
    def start(threads, part, parts):
        return python(TRAIN_PROBE, threads, part, parts, count, epochs)

    serial = figures(start(len(os.sched_getaffinity(0)), 0, 1))[0]
    split = [start(1, i, workers) for i in range(workers)]
    return serial, max(figures(p)[0] for p in split)


def python(code: str, *args) -> subprocess.Popen:
    """A fresh Python process running ``code`` with ``args``; its figures are read from stdout."""
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], cwd=ROOT, stdout=subprocess.PIPE,
                            text=True)


def probe(genotype: str, times: int) -> subprocess.Popen:
    """A fresh process timing the reference model ``times`` times (one figure a line)."""
    return python(IDLE_PROBE, genotype, times)


def figures(p: subprocess.Popen) -> list[float]:
    return [float(v) for v in p.communicate()[0].split()]


def main() -> None:
    a = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    a.add_argument("--trials", type=int, default=200)
    a.add_argument("--epochs", type=int, default=10)
    a.add_argument("--workers", type=int, default=2)
    a.add_argument("--latency-trials", type=int, default=20, help="trials of the run that times the reference")
    a.add_argument("--reference", default=REFERENCE)
    args = a.parse_args()

    from search.config import RunConfig
    from search.driver import run_search
    from search.ray_executor import RayExecutor

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    rows = []
    with tempfile.TemporaryDirectory() as d:
        # MLflow logging is part of a run's cost; its runs go to a throwaway store, not mlflow/
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{d}/mlflow.db"
        walls = {w: timed_run(w, args.trials, args.epochs, d) for w in (1, args.workers)}
        base = args.trials / walls[1] * 3600
        for w, wall in walls.items():
            tph = args.trials / wall * 3600
            rows.append((f"throughput, --workers {w}", f"{wall:.1f} s wall", f"{tph:.0f} trials/h",
                         f"{tph / base:.2f}x"))

        serial, split = training_alone(args.workers, 12, args.epochs)
        rows.append(("training alone, 1 x all cores", f"{serial:.1f} s wall", "12 networks", "1.00x"))
        rows.append((f"training alone, {args.workers} x 1 core", f"{split:.1f} s wall", "12 networks",
                     f"{serial / split:.2f}x"))

        # idle figures from fresh processes just before and after a parallel run whose trials also
        # time the reference model, in and out of their quiet phase (the machine's own drift cancels)
        idle = figures(probe(args.reference, 8))
        config = RunConfig(trials=args.latency_trials, epochs=args.epochs, study="latency", dir=d,
                           workers=args.workers)
        executor = RayExecutor(args.workers, evaluate=with_reference(args.reference))
        study = run_search(config, executor, progress=False)
        idle += figures(probe(args.reference, 8))
        gated, ungated = ([t.user_attrs[k] for t in study.trials if k in t.user_attrs]
                          for k in ("reference_gated_ms", "reference_ungated_ms"))
    ref = statistics.median(idle)
    for name, values in (("latency idle", idle), ("latency in run, gated", gated),
                         ("latency in run, no gate", ungated)):
        med = statistics.median(values)
        rows.append((name, f"{med:.3f} ms median", f"{len(values)} figures", f"{(med / ref - 1) * 100:+.1f} %"))

    print(f"search: mobile/digits, {args.trials} trials, {args.epochs} epochs, seed 0; reference: {args.reference} "
          f"@ 1x8x8, 10 classes, timed in {args.latency_trials} trials of a {args.workers}-worker run")
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    header = ("what", "measured", "rate / count", "vs 1 worker / idle")
    widths = [max(w, len(h)) for w, h in zip(widths, header)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))


if __name__ == "__main__":
    main()
