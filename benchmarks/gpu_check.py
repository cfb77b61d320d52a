"""The GPU paths proven on a machine with an NVIDIA GPU, in one command (under 5 minutes on one GPU):

    python benchmarks/gpu_check.py [--trials 12] [--epochs 6] [--random] [--mps] [--out FILE]

1. the tests marked ``cuda`` (tests/test_cuda.py), with pytest's own count;
2. short searches on a local Ray (mobile space, digits, the default sampler, same seed) at 1, 2
   and 4 trials per GPU (``--gpus-per-trial 1, 0.5, 0.25``) and once more at 4 in bf16: trials per
   hour (trials / the span from the first trial's start to the last one's end), GPU utilisation
   sampled every 0.1 s during that span, peak GPU memory per trial, the median trial's time in
   flight and in training, the quiet gate's account on the GPUs (timings, the seconds they halted
   the trainers and waited for them to park, the seconds timers queued for the slot), and for
   bf16 the accuracy change on the genotypes both runs trained.
   ``--random`` adds 1 and 4 per GPU with the random sampler, which screens nothing between
   trials: the difference is the search process's share (about 100 s more);
3. one digits network's training step alone on the GPU: wall time against the time its kernels
   ran, and kernels a step (whether a step is the GPU's work or the CPU's launches);
4. MobileNetV2 at 224x224, batch 1: CUDA-event latency (5 repeats in one process, each printed)
   against the CPU (all cores, 3 repeats).

``--mps`` runs all of it under a private NVIDIA MPS control daemon (its pipe and log folders in a
temporary directory; stopped at the end): the kernels of the trials sharing a GPU then run side by
side instead of taking turns (time-slicing). Compare its table with a plain run's.

Without a GPU it says so and exits 1.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def gpu_sampler():
    """A function that reads the GPUs' utilisation (%), averaged: NVML where it imports, else nvidia-smi."""
    try:
        import pynvml

        pynvml.nvmlInit()
        handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
        return lambda: statistics.fmean(pynvml.nvmlDeviceGetUtilizationRates(h).gpu for h in handles)
    except Exception:  # no NVML binding here: the command line tool
        def smi() -> float:
            out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                                 capture_output=True, text=True, timeout=5).stdout.split()
            return statistics.fmean(float(v) for v in out)
        return smi


class Utilisation:
    """Samples GPU utilisation in a thread; ``between(t0, t1)`` averages the samples in a span."""

    def __init__(self, every: float = 0.1) -> None:
        self.read, self.every = gpu_sampler(), every
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append((time.time(), self.read()))
            except Exception:
                pass
            self._stop.wait(self.every)

    def between(self, t0: float, t1: float) -> float | None:
        inside = [u for t, u in self.samples if t0 <= t <= t1]
        return statistics.fmean(inside) if inside else None

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


class Mps:
    """A private NVIDIA MPS control daemon: its pipe and log folders in ``folder``, named to every
    process started after it through this process's environment (the cuda tests, Ray's workers, and
    this process: it must start before CUDA does here). Nothing of the machine's settings changes;
    ``stop`` ends it (and the server it started)."""

    def __init__(self, folder: str) -> None:
        self.env = {"CUDA_MPS_PIPE_DIRECTORY": f"{folder}/pipe", "CUDA_MPS_LOG_DIRECTORY": f"{folder}/log"}
        for d in self.env.values():
            os.makedirs(d)
        subprocess.run(["nvidia-cuda-mps-control", "-d"], env={**os.environ, **self.env}, check=True, timeout=30,
                       stdin=subprocess.DEVNULL, capture_output=True)
        os.environ.update(self.env)
        # a client through it, in a fresh process, before a run depends on it
        probe = subprocess.run([sys.executable, "-c", "import torch; print(torch.ones(8, device='cuda').sum().item())"],
                               capture_output=True, text=True, timeout=120)
        if probe.returncode != 0:
            self.stop()
            last = (probe.stderr.strip().splitlines() or ["no message"])[-1]
            raise RuntimeError(f"a CUDA process could not start under MPS: {last[:300]}")

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            subprocess.run(["nvidia-cuda-mps-control"], input="quit\n", text=True, env={**os.environ, **self.env},
                           timeout=30, capture_output=True)
        for key in self.env:
            os.environ.pop(key, None)


def cuda_tests() -> str:
    """pytest's summary line for the cuda tests."""
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "cuda", "-p", "no:cacheprovider",
                          "tests/test_cuda.py"], cwd=ROOT, capture_output=True, text=True, timeout=240)
    lines = [line for line in out.stdout.splitlines() if line.strip()]
    if out.returncode != 0:
        print(out.stdout[-4000:], out.stderr[-2000:], file=sys.stderr)
    return lines[-1] if lines else f"pytest exited {out.returncode}: {out.stderr.strip()[-300:]}"


def search(per_gpu: int, gpus: int, trials: int, epochs: int, precision: str, sampler: str, where: str,
           util: Utilisation) -> dict:
    import optuna

    from hwnas.search import attrs
    from hwnas.search.config import RunConfig
    from hwnas.search.executors.quiet_gate import PlaceStats
    from hwnas.search.executors.ray import RayExecutor
    from hwnas.search.loop import run_search
    from hwnas.search.study import load_study

    # every trial trains to the end (no early stopping), so the rows compare like with like
    config = RunConfig(space="mobile", dataset="digits", trials=trials, epochs=epochs, device="cuda",
                       gpus_per_trial=1 / per_gpu, workers=per_gpu * gpus, precision=precision, dir=where,
                       study=f"per_gpu_{per_gpu}_{precision}_{sampler}", seed=0, sampler=sampler, early_stop="none")
    executor = RayExecutor(config.workers, gpus_per_trial=config.gpus_per_trial)
    try:
        run_search(config, executor, track=False, progress=False)
    except BaseException:
        executor.close()  # run_search closes it on its way out, but not if it fails before starting
        raise
    done = [t for t in load_study(where, config.study).trials if t.state == optuna.trial.TrialState.COMPLETE]
    spans = attrs.spans(done)
    t0, t1 = min(s for s, _ in spans), max(e for _, e in spans)
    memory = [t.user_attrs["gpu_memory_mb"] for t in done if "gpu_memory_mb" in t.user_attrs]
    # the quiet gate's account: timings on the GPUs, and how long they halted the trainers there
    gate = PlaceStats.total(c for place, c in executor.timing_costs.items() if "/gpu" in place)
    return {"per_gpu": per_gpu, "precision": precision, "sampler": sampler, "trials": len(done),
            "span_s": t1 - t0,
            "per_hour": len(done) / (t1 - t0) * 3600, "util": util.between(t0, t1),
            "memory_median": statistics.median(memory) if memory else None, "memory_max": max(memory, default=None),
            "accuracy": {t.user_attrs["genotype"]: t.user_attrs["accuracy"] for t in done
                         if "genotype" in t.user_attrs and "accuracy" in t.user_attrs},
            "latency_ms": statistics.median(t.user_attrs["latency_ms"] for t in done),
            "train_s": statistics.median(t.user_attrs["train_seconds"] for t in done),
            "trial_s": statistics.median(e - s for s, e in spans),
            "gate": gate}


# a mobile-space network on digits, as the searches train them (the cuda tests' network)
STEP_NET = "stem_c16_k3_s1_relu, ir_r2_k3_s2_e4_c24_relu, ir_r2_k5_s2_e4_c32_relu, conv_r1_k3_s1_c64_relu, head_relu"


def step_profile(device: str = "cuda", epochs: int = 1) -> str:
    """One line: a training step of STEP_NET alone in this process, wall time against the time its
    kernels ran on the device (torch.profiler), and the kernels a step. Kernels far shorter than the
    step: the step is the CPU's dispatch and launches (then more trials per GPU, or fewer launches,
    help; a faster GPU does not)."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    from hwnas.evaluators import Recipe
    from hwnas.evaluators.training import Trainer
    from hwnas.evaluators.trial import trial_data
    from hwnas.spaces import build, parse

    data = trial_data("digits", "", Recipe())
    train = data.train.to(device)
    model = build(parse(STEP_NET), data.input_shape, data.num_classes)
    trainer = Trainer(model, Recipe(epochs=epochs + 1), len(train), device)
    trainer.train_epoch(train)  # warm-up: allocator, cuDNN's choices
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    sync()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.startswith("cuda") else [])
    start = time.perf_counter()
    with profile(activities=activities) as prof:
        for _ in range(epochs):
            trainer.train_epoch(train)
        sync()
    wall = time.perf_counter() - start
    steps = epochs * trainer.steps_per_epoch
    events = prof.events()
    kernels = [e for e in events if e.device_type.name == "CUDA"] if device.startswith("cuda") else []
    busy_ms = sum(e.device_time for e in kernels) / 1e3  # device_time: microseconds
    ops = sum(1 for e in events if e.name.startswith("aten::") and e.device_type.name == "CPU")
    return (f"training step alone ({STEP_NET.split(',')[1].strip()}..., digits, batch 64, {device}): "
            f"{wall / steps * 1e3:.2f} ms wall, {busy_ms / steps:.2f} ms of kernels, "
            f"{len(kernels) / steps:.0f} kernels and {ops / steps:.0f} aten calls a step")


def sm_clock() -> int | None:
    """The first GPU's SM clock now (MHz), through NVML; None where it cannot be read."""
    try:
        import pynvml

        pynvml.nvmlInit()
        return int(pynvml.nvmlDeviceGetClockInfo(pynvml.nvmlDeviceGetHandleByIndex(0), pynvml.NVML_CLOCK_SM))
    except Exception:
        return None


def mobilenet_latency() -> tuple[list[float], list[float], list[tuple[int | None, int | None]]]:
    """CUDA and CPU repeats (ms), and the SM clock before and after each CUDA repeat: a GPU's
    clocks ramp up from idle, so a slow first repeat that began at a low clock was not warm."""
    import torch

    from hwnas.evaluators.latency import measure_latency
    from hwnas.spaces import NAMED, build

    model = build(NAMED["mobilenet_v2"], (3, 224, 224), 1000).eval()
    cuda, clocks = [], []
    for _ in range(5):
        before = sm_clock()
        cuda.append(measure_latency(model, (3, 224, 224), "cuda").median_ms)
        clocks.append((before, sm_clock()))
    cores = len(os.sched_getaffinity(0))
    cpu = [measure_latency(model, (3, 224, 224), "cpu", threads=cores).median_ms for _ in range(3)]
    torch.cuda.empty_cache()
    return cuda, cpu, clocks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12, help="trials per search (default 12)")
    # 6, not 8: the H200 run at 8 took 386 s with --random, whose rows spanned 80 s, so about 300 s
    # without, and this check has grown since (three cuda tests, the step profile, CUDA timings that
    # settle); the rows are compared with each other, taken in one run
    parser.add_argument("--epochs", type=int, default=6, help="epochs per trial (default 6)")
    parser.add_argument("--random", action="store_true", help="also 1 and 4 per GPU with the random sampler")
    parser.add_argument("--mps", action="store_true", help="run it all under a private NVIDIA MPS daemon")
    parser.add_argument("--out", help="also write the table to this file")
    args = parser.parse_args()
    if not args.mps:
        return check(args)
    if shutil.which("nvidia-cuda-mps-control") is None:
        print("gpu_check: --mps needs nvidia-cuda-mps-control (NVIDIA's MPS), not found on PATH", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="mps") as folder:  # short: the pipe's socket path has a limit
        try:
            mps = Mps(folder)
        except (OSError, subprocess.SubprocessError, RuntimeError) as e:
            print(f"gpu_check: MPS did not start: {e}", file=sys.stderr)
            return 1
        try:
            return check(args)
        finally:
            mps.stop()


def check(args: argparse.Namespace) -> int:
    import torch

    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device here: nothing to check (the cuda tests are reported as not run "
              "by the test suite)", file=sys.stderr)
        return 1
    import logging

    import ray

    start = time.perf_counter()
    gpus = torch.cuda.device_count()
    lines = [f"# gpu_check: {torch.cuda.get_device_name(0)} x{gpus}, torch {torch.__version__}, "
             f"ray {ray.__version__}, {len(os.sched_getaffinity(0))} CPU cores"
             + (", under MPS (a private daemon)" if args.mps else ""),
             f"cuda tests: {cuda_tests()}"]
    print(lines[-1], flush=True)
    ray.init(address="local", num_gpus=gpus, include_dashboard=False, log_to_driver=False,
             object_store_memory=512 * 2**20, logging_level=logging.ERROR)
    util = Utilisation()
    rows = []
    with tempfile.TemporaryDirectory() as where:
        # the default sampler screens candidates on the GPU between trials; random does not (the
        # difference is the driver's share of the time)
        plan = [(1, "fp32", "hybrid"), (2, "fp32", "hybrid"), (4, "fp32", "hybrid"), (4, "bf16", "hybrid")]
        plan += [(1, "fp32", "random"), (4, "fp32", "random")] if args.random else []
        for per_gpu, precision, sampler in plan:
            try:  # one failing row must not cost the others (GPU time is scarce)
                rows.append(search(per_gpu, gpus, args.trials, args.epochs, precision, sampler, where, util))
            except Exception as e:
                lines.append(f"search at {per_gpu}/GPU {precision} {sampler} FAILED: {type(e).__name__}: {e}")
                print(lines[-1], flush=True)
                continue
            r = rows[-1]
            print(f"  {per_gpu}/GPU {precision} {sampler}: {r['trials']} trials in {r['span_s']:.1f} s", flush=True)
    util.stop()
    ray.shutdown()
    base = {r["sampler"]: r["per_hour"] for r in rows if r["per_gpu"] == 1}
    lines.append(f"\nsearch: mobile space, digits, {args.epochs} epochs, {args.trials} trials per row, "
                 f"seed 0; 'vs 1/GPU': against the same sampler's 1/GPU row")
    lines.append("| trials/GPU | precision | sampler | trials | span s | trials/hour | vs 1/GPU | GPU util % "
                 "| GPU MB/trial (median, max) | trial s | training s | median latency ms "
                 "| timings (driver's) | halted s (parking) | queued s |")
    lines.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        util_text = "n/a" if r["util"] is None else f"{r['util']:.0f}"
        memory = "n/a" if r["memory_median"] is None else f"{r['memory_median']:.0f}, {r['memory_max']:.0f}"
        ratio = r["per_hour"] / base.get(r["sampler"], float("nan"))
        lines.append(f"| {r['per_gpu']} | {r['precision']} | {r['sampler']} | {r['trials']} | {r['span_s']:.1f} | "
                     f"{r['per_hour']:.0f} | {ratio:.2f}x | {util_text} | {memory} | "
                     f"{r['trial_s']:.2f} | {r['train_s']:.2f} | {r['latency_ms']:.3f} | "
                     f"{r['gate'].timings} ({r['gate'].by_driver}) | {r['gate'].held:.1f} ({r['gate'].parking:.1f}) | "
                     f"{r['gate'].queued:.1f} |")
    by = {(r["per_gpu"], r["precision"]): r["accuracy"] for r in rows if r["sampler"] == "hybrid"}
    fp32, bf16 = by.get((4, "fp32"), {}), by.get((4, "bf16"), {})
    both = sorted(set(fp32) & set(bf16))
    if both:
        diffs = [bf16[g] - fp32[g] for g in both]
        lines.append(f"bf16 vs fp32 accuracy on the {len(both)} genotypes both trained: median change "
                     f"{statistics.median(diffs):+.4f}, largest {max(diffs, key=abs):+.4f}")
    try:
        lines.append(step_profile())
    except Exception as e:
        lines.append(f"training step profile FAILED: {type(e).__name__}: {e}")
    print(lines[-1], flush=True)
    try:
        cuda, cpu, clocks = mobilenet_latency()
    except Exception as e:
        cuda, cpu, clocks = [], [], []
        lines.append(f"MobileNetV2 latency FAILED: {type(e).__name__}: {e}")
    if cuda and cpu:
        lines.extend(latency_table(cuda, cpu))
        lines.append("SM clock before and after each cuda repeat (MHz): "
                     + ", ".join(f"{a}/{b}" for a, b in clocks))
    lines.append(f"gpu_check took {time.perf_counter() - start:.0f} s")
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


def latency_table(cuda: list[float], cpu: list[float]) -> list[str]:
    lines = []
    lines.append("\nMobileNetV2 224x224, batch 1 (median of each repeat's median, ms; spread = max/min)")
    lines.append("| device | repeats | median ms | spread | each repeat, in order |")
    lines.append("| --- | --- | --- | --- | --- |")
    for name, runs in (("cuda (events)", cuda), (f"cpu ({len(os.sched_getaffinity(0))} threads)", cpu)):
        lines.append(f"| {name} | {len(runs)} | {statistics.median(runs):.3f} | {max(runs) / min(runs):.3f} "
                     f"| {', '.join(f'{r:.3f}' for r in runs)} |")
    lines.append(f"CPU / CUDA: {statistics.median(cpu) / statistics.median(cuda):.1f}x")
    return lines


if __name__ == "__main__":
    sys.exit(main())
