"""Trials per hour with 1 and N workers, and whether latency stays honest during a parallel run.

    python benchmarks/ray_throughput.py [--trials 200] [--epochs 10] [--workers 2] [--latency-trials 60]
                                        [--idle-every 1.0] [--latency-only] [--reference GENOTYPE]

1. Throughput: the default mobile/digits search (`search run`, 200 trials, same seed) with
   --workers 1 (this process, all cores) and --workers N (Ray, one core each); whole-run wall time
   of the real command, Ray's start included. The two runs train different networks (the sampler
   sees results in a different order), so short runs are noisy: keep the default.
   Beside it, the bound: 12 sampled networks trained alone (no search, no timing), one after
   another with all cores, then split over N processes of one core.
2. Latency: one fixed reference model at 1x8x8, 10 classes, timed as trials time (one thread),
   during an N-worker run of --latency-trials trials:
   - idle: every ~--idle-every seconds the whole run (driver, Ray's daemons, workers) is stopped
     with SIGSTOP while a separate process times the reference, then resumed;
   - in run, gated: timed inside each trial in the trial's quiet phase (the path every trial's own
     latency takes);
   - in run, no gate: timed in the same trials just after, without the quiet phase, while the other
     workers go on training (what the gate prevents).
   This host slows down for seconds at a time (a process timing the same model reads 0.75 ms, then
   1.3 ms for ten seconds): idle figures taken between the in-run ones meet the same bursts, and
   "paired" compares each in-run figure with the idle one taken nearest to it in time.
Print a table. Timings are only as quiet as the machine: run it with nothing else running.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
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
    with quiet.training():  # like the trial's own work: no other trial times meanwhile
        with quiet.measuring():
            result.metrics["reference_gated"] = (time.time(), reference_latency_ms(genotype))
        # the other trials train on meanwhile: what the gate prevents
        result.metrics["reference_ungated"] = (time.time(), reference_latency_ms(genotype))
    return result


def latency_run(genotype: str, trials: int, epochs: int, workers: int, directory: str) -> dict:
    """(wall time, ms) figures of the reference timed inside each trial of an N-worker Ray run."""
    import optuna
    import ray.cloudpickle

    from search.config import RunConfig
    from search.driver import run_search
    from search.ray_executor import RayExecutor

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import benchmarks/
    config = RunConfig(trials=trials, epochs=epochs, study="latency", dir=directory, workers=workers)
    study = run_search(config, RayExecutor(workers, evaluate=with_reference(genotype)), progress=False)
    return {k: [t.user_attrs[k] for t in study.trials if k in t.user_attrs]
            for k in ("reference_gated", "reference_ungated")}


def timed_run(workers: int, trials: int, epochs: int, directory: str) -> float:
    cmd = [sys.executable, "-m", "search", "run", "--trials", str(trials), "--epochs", str(epochs),
           "--workers", str(workers), "--study", f"w{workers}", "--dir", directory]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{r.stderr}")
    return wall


IMPORTS = f"""
import json, sys, time; sys.path.insert(0, {str(ROOT)!r}); sys.path.insert(0, {str(ROOT / 'benchmarks')!r})
from ray_throughput import latency_run, reference_latency_ms
"""

# one figure per line read from stdin, each printed as "wall_time ms"
IDLE_PROBE = IMPORTS + """
for _ in sys.stdin:
    print(time.time(), reference_latency_ms(sys.argv[1]), flush=True)
"""

LATENCY_RUN = IMPORTS + """
print(json.dumps(latency_run(sys.argv[1], *map(int, sys.argv[2:5]), sys.argv[5])))
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


def python(code: str, *args, stdin=None) -> subprocess.Popen:
    """A fresh Python process running ``code`` with ``args``; its figures are read from stdout."""
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], cwd=ROOT, stdout=subprocess.PIPE,
                            stdin=stdin, text=True)


def figures(p: subprocess.Popen) -> list[float]:
    return [float(v) for v in p.communicate()[0].split()]


def process_tree(root: int) -> list[int]:
    """``root`` and every process below it (a local Ray's daemons and workers descend from its driver)."""
    children: dict[int, list[int]] = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:  # gone meanwhile
            continue
        children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    tree, i = [root], 0
    while i < len(tree):
        tree += children.get(tree[i], [])
        i += 1
    return tree


@contextlib.contextmanager
def frozen(root: int):
    """Every process of a run stopped (SIGSTOP) inside, so the machine is idle; resumed after."""
    stopped = []
    try:
        for pid in process_tree(root):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
                stopped.append(pid)
        time.sleep(0.005)  # let the stopped ones leave their cores
        yield
    finally:
        for pid in stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


def idle_during(run: subprocess.Popen, genotype: str, interval: float) -> list[tuple[float, float]]:
    """Idle figures interleaved with a running ``run``: every ``interval`` s (jittered), the whole run
    is frozen while a separate process times the reference once. Bursts of the host (it slows for
    seconds at a time) then fall on idle and in-run figures alike."""
    probe = python(IDLE_PROBE, genotype, stdin=subprocess.PIPE)
    jitter = random.Random(0)

    def one() -> tuple[float, float]:
        probe.stdin.write("\n")
        probe.stdin.flush()
        wall, ms = probe.stdout.readline().split()
        return float(wall), float(ms)

    one()  # the first figure pays for torch's start-up
    idle = []
    try:
        while run.poll() is None:
            time.sleep(interval * jitter.uniform(0.5, 1.5))
            with frozen(run.pid):
                if run.poll() is None:
                    idle.append(one())
    finally:
        probe.stdin.close()
        probe.wait()
    return idle


def nearest_ratios(values: list[tuple[float, float]], idle: list[tuple[float, float]]) -> list[float]:
    """Each in-run figure over the idle figure taken nearest to it in time."""
    return [ms / min(idle, key=lambda i: abs(i[0] - wall))[1] for wall, ms in values]


def main() -> None:
    a = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    a.add_argument("--trials", type=int, default=200)
    a.add_argument("--epochs", type=int, default=10)
    a.add_argument("--workers", type=int, default=2)
    a.add_argument("--latency-trials", type=int, default=60, help="trials of the run that times the reference")
    a.add_argument("--idle-every", type=float, default=1.0, help="seconds between idle figures during that run")
    a.add_argument("--latency-only", action="store_true", help="skip the throughput runs")
    a.add_argument("--reference", default=REFERENCE)
    args = a.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as d:
        # MLflow logging is part of a run's cost; its runs go to a throwaway store, not mlflow/
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{d}/mlflow.db"
        if not args.latency_only:
            walls = {w: timed_run(w, args.trials, args.epochs, d) for w in (1, args.workers)}
            base = args.trials / walls[1] * 3600
            for w, wall in walls.items():
                tph = args.trials / wall * 3600
                rows.append((f"throughput, --workers {w}", f"{wall:.1f} s wall", f"{tph:.0f} trials/h",
                             f"{tph / base:.2f}x", ""))
            serial, split = training_alone(args.workers, 12, args.epochs)
            rows.append(("training alone, 1 x all cores", f"{serial:.1f} s wall", "12 networks", "1.00x", ""))
            rows.append((f"training alone, {args.workers} x 1 core", f"{split:.1f} s wall", "12 networks",
                         f"{serial / split:.2f}x", ""))

        run = python(LATENCY_RUN, args.reference, args.latency_trials, args.epochs, args.workers, d)
        try:
            idle = idle_during(run, args.reference, args.idle_every)
            out, _ = run.communicate()
        finally:
            run.kill()
        if run.returncode:
            sys.exit("the latency run failed (its error is above)")
        in_run = json.loads(out)

    ref = statistics.median(ms for _, ms in idle)
    for name, values in (("latency idle (run frozen)", idle), ("latency in run, gated", in_run["reference_gated"]),
                         ("latency in run, no gate", in_run["reference_ungated"])):
        ms = [v for _, v in values]
        q = statistics.quantiles(ms, n=4)
        paired = "" if values is idle else f"{(statistics.median(nearest_ratios(values, idle)) - 1) * 100:+.1f} %"
        rows.append((name, f"{statistics.median(ms):.3f} ms median ({q[0]:.3f}-{q[2]:.3f})",
                     f"{len(ms)} figures", f"{(statistics.median(ms) / ref - 1) * 100:+.1f} %", paired))

    print(f"search: mobile/digits, {args.trials} trials, {args.epochs} epochs, seed 0; " * (not args.latency_only)
          + f"reference: {args.reference} "
          f"@ 1x8x8, 10 classes, timed in {args.latency_trials} trials of a {args.workers}-worker run, idle "
          f"figures taken with that run frozen every ~{args.idle_every:g} s")
    header = ("what", "measured (middle half)", "rate / count", "vs 1 worker / idle", "vs idle, paired")
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip())
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())


if __name__ == "__main__":
    main()
