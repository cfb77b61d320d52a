"""Trials per hour with 1 and N workers, and whether latency stays honest during a parallel run.

    python benchmarks/ray_throughput.py [--trials 200] [--epochs 10] [--workers 2] [--latency-trials 60]
                                        [--latency-only] [--reference GENOTYPE]

1. Throughput: the default mobile/digits search (`search run`, 200 trials, same seed) with
   --workers 1 (this process, all cores) and --workers N (Ray, one core each); whole-run wall time
   of the real command, Ray's start included. Same trials: the N-worker study starts with the
   1-worker run's architectures enqueued, in its order (left alone, its sampler would see results
   in another order and pick other networks); its sampler still runs and screens as usual.
   Beside it, the bound: 12 sampled networks trained alone (no search, no timing), one after
   another with all cores, then split over N processes of one core.
2. Latency: one fixed reference model at 1x8x8, 10 classes, timed as trials time (one thread),
   inside each trial of an N-worker run of --latency-trials trials, each figure followed at once
   by an idle one: this benchmark stops every process of the run (SIGSTOP: driver, Ray's daemons,
   workers) while a process of its own times the reference, then resumes them.
   - in run, gated: timed in the trial's quiet phase (the path every trial's own latency takes);
   - in run, no gate: timed in the same trial just after, without the quiet phase, while the other
     workers go on training (what the gate prevents).
   "vs idle" is the median over trials of in-run / idle. Pairs, because this host slows down for
   a while now and then (the same model reads 0.75 ms, then 1.3 ms for seconds): a pair's two
   figures, a tenth of a second apart, meet the same state of the host.
Print a table. Timings are only as quiet as the machine: run it with nothing else running.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

REFERENCE = "stem_c16_k3_s1_relu, ir_r2_k3_s1_e4_c24_relu, ir_r2_k5_s2_e4_c32_se0.25_relu, " \
            "ds_r2_k3_s2_c48_relu, conv_r1_k3_s1_c64_relu, head_c128_relu"


def reference_latency_ms(genotype: str) -> float:
    """The reference model's batch-1 latency in this process, with the threads trials time with."""
    from hwnas.evaluators import measure_latency
    from hwnas.search.config import RunConfig
    from hwnas.spaces import build, parse

    threads = RunConfig.threads  # the default of `search run --threads`
    return measure_latency(build(parse(genotype), (1, 8, 8), 10), (1, 8, 8), threads=threads).median_ms


def with_reference(genotype: str, channel: str):
    """An evaluate(spec) that also times the reference model, each figure paired with an idle one."""
    import functools

    return functools.partial(_evaluate_with_reference, genotype, channel)


def _evaluate_with_reference(genotype: str, channel: str, spec):
    from hwnas.evaluators import evaluate, quiet

    result = evaluate(spec)
    figures = {}
    with quiet.training():  # like the trial's own work: no other trial times meanwhile
        with quiet.measuring():
            figures["reference_gated"] = (reference_latency_ms(genotype), idle_figure(channel))
        # the other trials train on meanwhile: what the gate prevents
        figures["reference_ungated"] = (reference_latency_ms(genotype), idle_figure(channel))
    # beside the run (the workers share this machine): a trial's result carries registered metrics only
    with open(f"{channel}/reference-{spec.number}.json", "w") as f:
        json.dump(figures, f)
    return result


def idle_figure(channel: str) -> float:
    """The reference timed on an idle machine, now: this benchmark stops every process of the run
    (this one too, waiting here) while a process of its own times it (``serve_idle_figures``)."""
    import fcntl

    with open(f"{channel}/lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one question at a time (two trials may ask at once)
        with open(f"{channel}/ask", "w") as f:
            f.write("?")
        with open(f"{channel}/answer") as f:
            return float(f.read())


def serve_idle_figures(run: subprocess.Popen, genotype: str, channel: str) -> threading.Thread:
    """Answers ``idle_figure`` (named pipes in ``channel``) until the run ends."""
    for name in ("ask", "answer"):
        os.mkfifo(f"{channel}/{name}")
    probe = python(IDLE_PROBE, genotype, stdin=subprocess.PIPE)

    def one() -> str:
        probe.stdin.write("\n")
        probe.stdin.flush()
        return probe.stdout.readline().strip()

    def serve() -> None:
        one()  # the first figure pays for torch's start-up
        while True:
            with open(f"{channel}/ask") as f:
                if not f.read():  # opened and closed by main(): the run is over
                    break
            with frozen(run.pid):
                figure = one()
            with open(f"{channel}/answer", "w") as f:
                f.write(figure)
        probe.stdin.close()
        probe.wait()

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    return server


def latency_run(genotype: str, trials: int, epochs: int, workers: int, directory: str, channel: str) -> dict:
    """(in run, idle) figure pairs of the reference timed inside each trial of an N-worker Ray run."""
    import ray.cloudpickle

    from hwnas.search.config import RunConfig
    from hwnas.search.executors.ray import RayExecutor
    from hwnas.search.loop import run_search

    _quiet_optuna()
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import benchmarks/
    config = RunConfig(trials=trials, epochs=epochs, study="latency", dir=directory, workers=workers)
    study = run_search(config, RayExecutor(workers, evaluate=with_reference(genotype, channel)), progress=False)
    figures = [json.loads(Path(channel, f"reference-{t.number}.json").read_text()) for t in study.trials
               if Path(channel, f"reference-{t.number}.json").exists()]
    return {k: [f[k] for f in figures] for k in ("reference_gated", "reference_ungated")}


def enqueue_trials(directory: str, source: str, target: str, trials: int, epochs: int) -> None:
    """Make study ``target`` holding ``source``'s architectures as waiting trials, in its order. It
    is made with the random sampler, which needs no screen: the sampler is not part of what a
    continued run must match, so `search run` continues it with the default one."""
    from hwnas.search.config import RunConfig
    from hwnas.search.study import load_study, open_study

    _quiet_optuna()
    study = open_study(RunConfig(trials=trials, epochs=epochs, study=target, dir=directory, sampler="random"))
    for trial in sorted(load_study(directory, source).trials, key=lambda t: t.number):
        study.enqueue_trial(trial.params)


def _quiet_optuna() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def timed_run(workers: int, trials: int, epochs: int, directory: str, same_as: str | None = None) -> float:
    """Wall seconds of `search run` with ``workers``; with ``same_as``, on that study's architectures."""
    study = f"w{workers}"
    if same_as:
        enqueue = python(ENQUEUE, directory, same_as, study, trials, epochs)
        if enqueue.wait():
            sys.exit(f"could not enqueue {same_as}'s trials in {study} (the error is above)")
    cmd = [sys.executable, "-m", "hwnas.search", "run", "--trials", str(trials), "--epochs", str(epochs),
           "--workers", str(workers), "--study", study, "--dir", directory]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{r.stderr}")
    return wall


IMPORTS = f"""
import json, sys; sys.path.insert(0, {str(ROOT)!r}); sys.path.insert(0, {str(ROOT / 'benchmarks')!r})
from ray_throughput import enqueue_trials, latency_run, reference_latency_ms
"""

# one figure per line read from stdin
IDLE_PROBE = IMPORTS + """
for _ in sys.stdin:
    print(reference_latency_ms(sys.argv[1]), flush=True)
"""

LATENCY_RUN = IMPORTS + """
print(json.dumps(latency_run(sys.argv[1], *map(int, sys.argv[2:5]), *sys.argv[5:7])))
"""

ENQUEUE = IMPORTS + """
enqueue_trials(*sys.argv[1:4], *map(int, sys.argv[4:6]))
"""


TRAIN_PROBE = f"""
import sys, time; sys.path.insert(0, {str(ROOT)!r})
import optuna, torch
from hwnas.evaluators.trial import trial_data
from hwnas.evaluators.training import Recipe, train
from hwnas.spaces import build, get_space, parse
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


def main() -> None:
    a = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    a.add_argument("--trials", type=int, default=200)
    a.add_argument("--epochs", type=int, default=10)
    a.add_argument("--workers", type=int, default=2)
    a.add_argument("--latency-trials", type=int, default=60, help="trials of the run that times the reference")
    a.add_argument("--latency-only", action="store_true", help="skip the throughput runs")
    a.add_argument("--reference", default=REFERENCE)
    args = a.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as d:
        # MLflow logging is part of a run's cost; its runs go to a throwaway store, not mlflow/
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{d}/mlflow.db"
        if not args.latency_only:
            walls = {1: timed_run(1, args.trials, args.epochs, d)}
            walls[args.workers] = timed_run(args.workers, args.trials, args.epochs, d, same_as="w1")
            base = args.trials / walls[1] * 3600
            for w, wall in walls.items():
                tph = args.trials / wall * 3600
                rows.append((f"throughput, --workers {w}", f"{wall:.1f} s wall", f"{tph:.0f} trials/h",
                             f"{tph / base:.2f}x"))
            serial, split = training_alone(args.workers, 12, args.epochs)
            rows.append(("training alone, 1 x all cores", f"{serial:.1f} s wall", "12 networks", "1.00x"))
            rows.append((f"training alone, {args.workers} x 1 core", f"{split:.1f} s wall", "12 networks",
                         f"{serial / split:.2f}x"))

        channel = tempfile.mkdtemp(dir=d)
        run = python(LATENCY_RUN, args.reference, args.latency_trials, args.epochs, args.workers, d, channel)
        try:
            server = serve_idle_figures(run, args.reference, channel)
            out, _ = run.communicate()
        finally:
            run.kill()
        open(f"{channel}/ask", "w").close()  # tells the server the run is over
        server.join()
        if run.returncode:
            sys.exit("the latency run failed (its error is above)")
        pairs = json.loads(out)

    for name, key in (("gated", "reference_gated"), ("no gate", "reference_ungated")):
        in_run, idle = zip(*pairs[key])
        ratio = statistics.median(r / i for r, i in pairs[key])
        rows.append((f"latency in run, {name}", spread(in_run), f"{len(in_run)} figures",
                     f"{(ratio - 1) * 100:+.1f} %"))
        rows.append(("  idle, just after (run stopped)", spread(idle), f"{len(idle)} figures", ""))

    print(f"search: mobile/digits, {args.trials} trials, {args.epochs} epochs, seed 0; " * (not args.latency_only)
          + f"reference: {args.reference} @ 1x8x8, 10 classes, timed in {args.latency_trials} trials of a "
          f"{args.workers}-worker run, each figure followed by an idle one; vs idle: median of the pairs' ratios")
    header = ("what", "measured (middle half)", "rate / count", "vs 1 worker / idle")
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip())
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())


def spread(ms) -> str:
    q = statistics.quantiles(ms, n=4)
    return f"{statistics.median(ms):.3f} ms median ({q[0]:.3f}-{q[2]:.3f})"


if __name__ == "__main__":
    main()
