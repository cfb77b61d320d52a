"""A device in the Ray cluster (``--latency-on RESOURCE``): the node that advertises a custom
resource times every candidate, one at a time, while trials train on the other nodes.

The device joins with ``ray start --address HEAD --resources '{"RESOURCE": 1}'``. One actor there,
``DeviceTimer``, holds all of that node's CPUs (and GPUs), so no trial is placed beside it and a
timing has the device to itself; it is one thread, so timings queue. A worker sends it the model as
data (``evaluators.timer.DeviceTiming``: genotype text and weights) and waits for the figures.
"""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Any

import numpy as np
import ray
import torch

from hwnas.evaluators.metrics import Metrics
from hwnas.evaluators.reference import anchor_ms
from hwnas.evaluators.runtimes import weights_of
from hwnas.evaluators.timer import DeviceTiming, How, on_device
from hwnas.spaces import Network

from ..errors import UsageError


def node_label() -> str:
    """This Ray node as trials record it: host name and the start of its node id (two nodes on one
    host differ)."""
    return f"{socket.gethostname()}/{ray.get_runtime_context().get_node_id()[:8]}"


@dataclass(frozen=True)
class DeviceNode:
    resource: str
    node_id: str
    cpus: int
    gpus: int


def find_device(resource: str) -> DeviceNode:
    """The live node advertising ``resource`` (the first, if several do)."""
    nodes = [n for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get(resource, 0) > 0]
    if not nodes:
        raise UsageError(f"no node of the Ray cluster advertises the resource {resource!r} (--latency-on); start "
                         f"the device with: ray start --address HEAD:PORT --resources '{{\"{resource}\": 1}}'")
    r = nodes[0]["Resources"]
    return DeviceNode(resource, nodes[0]["NodeID"], int(r.get("CPU", 0)), int(r.get("GPU", 0)))


@ray.remote
class DeviceTimer:
    """Times on the device's node: all its cores; its GPU, if it has one, for the torch runtime."""

    def __init__(self) -> None:
        torch.set_num_threads(len(os.sched_getaffinity(0)))
        self.node = node_label()
        self.device = "cuda" if ray.get_gpu_ids() else "cpu"

    def where(self) -> str:
        return self.node

    def costs(self, timing: DeviceTiming) -> Metrics:
        return on_device(timing, self.device, self.node)

    def anchor(self, runtime: str, input_shape: tuple[int, int, int], threads: int) -> float:
        """The reference network's steady latency on the device (``evaluators.reference``)."""
        return anchor_ms(runtime, input_shape, threads)


PLACE_TIMEOUT = 120  # seconds for the timer to start on the device (it holds the whole node)


def start_timer(device: DeviceNode) -> Any:
    """The device's timer, placed (and running) before any trial worker could take its cores."""
    timer = DeviceTimer.options(  # type: ignore[attr-defined]
        resources={device.resource: 1}, num_cpus=device.cpus, num_gpus=device.gpus).remote()
    try:
        ray.get(timer.where.remote(), timeout=PLACE_TIMEOUT)
    except ray.exceptions.GetTimeoutError:
        ray.kill(timer)
        raise UsageError(f"the device (--latency-on {device.resource}) did not take its timer within "
                         f"{PLACE_TIMEOUT} s: its timer needs the whole node ({device.cpus} CPUs, {device.gpus} "
                         f"GPUs); is another job holding them?") from None
    return timer


class OnDevice:
    """The ``evaluators.timer.Timer`` of a trial worker under ``--latency-on``."""

    def __init__(self, timer: Any) -> None:
        self.timer = timer

    def costs(self, model: Network, input_shape: tuple[int, int, int], device: str, how: How,
              calibration: np.ndarray | None = None) -> Metrics:
        timing = DeviceTiming(str(model.genotype), weights_of(model), input_shape, model.num_classes, how,
                              calibration)
        return ray.get(self.timer.costs.remote(timing))
