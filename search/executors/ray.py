"""Trials on Ray: a pool of long-lived worker actors (no process start per trial), one trial each
at a time. A worker that dies (killed, out of memory, its node lost) is replaced and its trial
run again, up to ``max_retries`` times; then the trial fails with the reason."""
from __future__ import annotations

import logging
import os
import socket
from dataclasses import replace
from typing import Any

import ray

from hwnas.evaluators import TrialSpec, evaluate

from .._private import ray_errors_to_stderr
from ..errors import UsageError
from .base import Evaluate, Outcome, run_one
from .device import DeviceNode, OnDevice, find_device, node_label, start_timer
from .quiet_gate import DRIVER, Gate, GateClient, PlaceStats, driver_gpus

MAX_RETRIES = 2


@ray.remote(concurrency_groups={"info": 1})  # type: ignore[call-overload]
class TrialWorker:
    """Runs trials in one process: torch threads = its CPUs, the GPU Ray gave it if any."""

    def __init__(self, gate: Any, who: int, cpus: int, evaluate: Evaluate, device_timer: Any = None) -> None:
        import torch

        from hwnas.evaluators import quiet, timer
        from hwnas.evaluators.latency import start_cuda

        torch.set_num_threads(cpus)
        gpus = ray.get_gpu_ids()  # Ray set CUDA_VISIBLE_DEVICES to them: "cuda" is this worker's GPU
        self.device = "cuda" if gpus else "cpu"
        start_cuda(self.device)  # now, beside the other workers: not in its first trial's quiet phase
        self.evaluate = evaluate
        self.node = node_label()
        quiet.install(GateClient(gate, who, gpus))
        timer.install(OnDevice(device_timer) if device_timer is not None else timer.Here(self.node))

    @ray.method(concurrency_group="info")  # answers while a trial runs
    def pid(self) -> int:
        return os.getpid()

    def run(self, spec: TrialSpec, retries: int) -> Outcome:
        return replace(run_one(replace(spec, device=self.device), self.evaluate), retries=retries, node=self.node)


def _reachable(address: str) -> None:
    """Fail fast on an address nobody listens at (ray.init would retry for about a minute)."""
    if "://" in address or address == "auto":
        return
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except (ValueError, OSError) as e:
        raise UsageError(f"cannot reach a Ray cluster at --ray-address {address!r} ({e}); "
                         f"give HOST:PORT of a running head (`ray start --head`)") from None


def _connect(address: str | None) -> None:
    ray_errors_to_stderr()
    if address is None:
        # "local": a fresh Ray for this run, never one somebody else started on this machine
        ray.init(address="local", object_store_memory=128 * 1024**2, include_dashboard=False,
                 log_to_driver=False, logging_level=logging.ERROR)
        return
    _reachable(address)
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    except ConnectionError as e:
        raise UsageError(f"cannot join the Ray cluster at {address!r}: {str(e).splitlines()[0]} "
                         f"(token auth: set RAY_AUTH_MODE=token, and RAY_AUTH_TOKEN if the head uses one)") from None


def _plan(workers: int | None, cpus: int | None, gpus: float | None,
          device: DeviceNode | None = None) -> tuple[int, int, float]:
    """Workers, CPUs and GPUs per trial, defaults filled from the cluster's resources (less the
    ``device``'s: its timer holds them)."""
    total = ray.cluster_resources()
    n_cpu, n_gpu = int(total.get("CPU", 0)), int(total.get("GPU", 0))
    if device is not None:
        n_cpu, n_gpu = n_cpu - device.cpus, n_gpu - device.gpus
    if gpus is None:
        gpus = 1.0 if n_gpu else 0.0
    if workers is None:
        workers = int(n_gpu / gpus) if gpus else max(1, n_cpu)
    if cpus is None:
        cpus = max(1, n_cpu // workers)
    # a worker that cannot be placed would hold its trial forever
    besides = f" besides the device's (--latency-on {device.resource})" if device else ""
    if workers * cpus > n_cpu:
        raise UsageError(f"--workers {workers} x --cpus-per-trial {cpus} needs {workers * cpus} CPUs; "
                         f"the Ray cluster has {n_cpu}{besides}")
    if workers * gpus > n_gpu:
        raise UsageError(f"--workers {workers} x --gpus-per-trial {gpus:g} needs {workers * gpus:g} GPUs; "
                         f"the Ray cluster has {n_gpu}{besides}")
    return workers, cpus, gpus


class RayExecutor:
    """Up to ``capacity`` trials at once, one per worker actor. Joins the Ray this process is
    already connected to, if any (and then leaves it running on close)."""

    def __init__(self, workers: int | None = None, address: str | None = None, cpus_per_trial: int | None = None,
                 gpus_per_trial: float | None = None, evaluate: Evaluate = evaluate,
                 max_retries: int = MAX_RETRIES, latency_on: str | None = None) -> None:
        import torch

        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            _connect(address)
        self.device_timer = None  # the device's timer (--latency-on)
        try:
            device = find_device(latency_on) if latency_on else None
            self.capacity, self.cpus, self.gpus = _plan(workers, cpus_per_trial, gpus_per_trial, device)
            if device:
                self.device_timer = start_timer(device)
        except UsageError:
            self._disconnect()
            raise
        # the workers own the cores; the asking process only asks, screens and tells (its own count
        # comes back on close: a notebook's torch is not left on one thread)
        self._threads = torch.get_num_threads()
        torch.set_num_threads(1)
        self.evaluate, self.max_retries = evaluate, max_retries
        where = "a local Ray" if address is None else f"the Ray cluster at {address}"
        self.description = (f"{where}, {self.capacity} workers x {self.cpus} CPU"
                            + (f" + {self.gpus:g} GPU" if self.gpus else ""))
        if self.device_timer is not None:
            self.description += (f"; latency timed on node {ray.get(self.device_timer.where.remote())} "
                                 f"(--latency-on {latency_on})")
        self.gate = Gate.remote()  # type: ignore[attr-defined]
        self.timing_costs: dict[str, PlaceStats] = {}  # what timing cost each place: read on close
        self._count = 0
        self._idle = [self._new_worker() for _ in range(self.capacity)]
        self._running: dict = {}  # ObjectRef -> (worker, who, spec, retries)
        if self.gpus:  # this process screens on its cuda (see driver_quiet): start it while the workers start
            from hwnas.evaluators.latency import start_cuda

            try:
                start_cuda("cuda")
            except Exception:  # only a head start: a CUDA fault here shows where the screening runs, with its reason
                pass

    def _new_worker(self) -> tuple[Any, int]:
        self._count += 1
        options = TrialWorker.options(num_cpus=self.cpus, num_gpus=self.gpus)  # type: ignore[attr-defined]
        worker = options.remote(self.gate, self._count, self.cpus, self.evaluate, self.device_timer)
        return worker, self._count

    def screen_scale(self, runtime: str, input_shape: tuple[int, int, int]) -> float:
        """With --latency-on, what this process's screening latency is multiplied by to read as the
        device's: the reference network's steady latency there over here (1 without a device)."""
        if self.device_timer is None:
            return 1.0
        from hwnas.evaluators.reference import anchor_ms

        return float(ray.get(self.device_timer.anchor.remote(runtime, input_shape, 1))) / anchor_ms(
            runtime, input_shape, 1)

    def workers(self) -> list:
        """The live worker actors (a test kills one of them)."""
        return [w for w, _ in self._idle] + [w for w, _, _, _ in self._running.values()]

    def driver_quiet(self) -> GateClient:
        """The driver's place at the gate (``who`` DRIVER): its screening and logging share the cores of
        a local Ray's workers, so it pauses for their timings and they wait for it. When trials
        run on GPUs the driver screens on its own ``cuda``, and takes turns with the trials there."""
        return GateClient(self.gate, DRIVER, driver_gpus() if self.gpus else None)

    def submit(self, spec: TrialSpec, retries: int = 0) -> None:
        worker, who = self._idle.pop()
        self._running[worker.run.remote(spec, retries)] = (worker, who, spec, retries)

    def wait(self) -> list[Outcome]:
        """Block until a trial is done; return the finished ones (a retried one is not among them)."""
        ray.wait(list(self._running), num_returns=1)
        ready, _ = ray.wait(list(self._running), num_returns=len(self._running), timeout=0)
        outcomes = []
        for ref in ready:
            worker, who, spec, retries = self._running.pop(ref)
            try:
                outcomes.append(ray.get(ref))
                self._idle.append((worker, who))
            except ray.exceptions.RayError as e:
                # a worker that cannot start is no fault of the trial's: a new one would fail too (an endless loop)
                if isinstance(e, ray.exceptions.RayActorError) and e.actor_init_failed:
                    last = [line for line in str(e).splitlines() if line.strip()][-1].strip()
                    raise UsageError(f"a Ray worker could not start: {last} (every node needs this package "
                                     f"and its dependencies installed)") from None
                # the worker process is gone (killed, out of memory, its node lost)
                self.gate.forget.remote(who)
                ray.kill(worker, no_restart=True)
                self._idle.append(self._new_worker())
                if retries < self.max_retries:
                    self.submit(spec, retries + 1)
                else:
                    reason = str(e).strip().splitlines()[0][:300]
                    outcomes.append(Outcome(spec, None, f"worker died {retries + 1} times; last: "
                                                        f"{type(e).__name__}: {reason}", retries))
        return outcomes

    def close(self) -> None:
        import torch

        self.timing_costs = self._timing_costs()
        torch.set_num_threads(self._threads)
        if self._owns_ray:
            self._disconnect()
            return
        for worker in self.workers():
            ray.kill(worker)
        ray.kill(self.gate)
        if self.device_timer is not None:
            ray.kill(self.device_timer)

    def _timing_costs(self) -> dict[str, PlaceStats]:
        """What timing cost each place (node, or node/GPU) over the run, read from the gate before it
        goes (benchmarks/gpu_check.py prints it); empty where the gate cannot answer."""
        try:
            return ray.get(self.gate.stats.remote(), timeout=2)  # a live gate answers in ms
        except Exception:  # the run is ending anyway (Ray gone, the gate killed): nothing to report
            return {}

    def _disconnect(self) -> None:
        if self._owns_ray:
            ray.shutdown()  # ends this job: its actors go with it; a local Ray stops
