"""The quiet gate of a Ray run: one small actor that lets a trial time its model only while every
other trial on the same place is paused between training steps (see ``evaluators.quiet``). A place
is a node's CPUs, or one GPU of a node: trials sharing a GPU (``--gpus-per-trial 0.25``) take turns
with each other there, and trials on other GPUs or on the CPUs go on."""
from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import astuple, dataclass, field, replace
from typing import Any

import ray

DRIVER = 0  # the search process's ``who`` at the gate; workers count from 1


@dataclass(frozen=True)
class PlaceStats:
    """What timing cost one place over a run: its timings, the seconds its trainers were halted
    for them (``held``: from taking the slot to giving it back), of those the seconds spent waiting
    for the trainers to park (``parking``), the search process's share (its screening), and the
    seconds timers waited for the slot while another timed there (``queued``)."""
    timings: int = 0
    held: float = 0.0
    parking: float = 0.0
    by_driver: int = 0
    driver_held: float = 0.0
    queued: float = 0.0

    @staticmethod
    def total(places: Iterable[PlaceStats]) -> PlaceStats:
        """Several places' costs together (a node's GPUs, a cluster)."""
        return PlaceStats(*map(sum, zip(*(astuple(p) for p in places))))  # none: all zero


@dataclass
class _Node:
    busy: set = field(default_factory=set)    # workers training or evaluating
    paused: set = field(default_factory=set)  # of those, the ones parked at a step
    timer: int | None = None                  # the worker timing a model, if any
    since: float = 0.0                        # when it took the slot
    stats: PlaceStats = PlaceStats()


@ray.remote(num_cpus=0)
class Gate:
    """Per node: who trains, who is paused, who times. Async, so waits cost no thread."""

    def __init__(self) -> None:
        self._nodes: dict[str, _Node] = {}
        self._changed = asyncio.Condition()

    def _node(self, node: str) -> _Node:
        return self._nodes.setdefault(node, _Node())

    async def begin_training(self, node: str, who: int) -> None:
        async with self._changed:
            n = self._node(node)
            await self._changed.wait_for(lambda: n.timer is None)
            n.busy.add(who)

    async def end_training(self, node: str, who: int) -> None:
        async with self._changed:
            self._node(node).busy.discard(who)
            self._changed.notify_all()

    async def timing_wanted(self, node: str) -> None:
        """A trainer's long poll: returns once someone on its node wants to time."""
        async with self._changed:
            n = self._node(node)
            await self._changed.wait_for(lambda: n.timer is not None)

    async def pause(self, node: str, who: int) -> None:
        """A trainer parks here until the timing on its node is over."""
        async with self._changed:
            n = self._node(node)
            n.paused.add(who)
            self._changed.notify_all()
            await self._changed.wait_for(lambda: n.timer is None)
            n.paused.discard(who)

    async def begin_timing(self, node: str, who: int) -> None:
        """Returns when ``who`` holds the node's timing slot and no other trainer there runs."""
        async with self._changed:
            n = self._node(node)
            asked = time.monotonic()
            n.paused.add(who)  # counts as parked while it waits for the slot: the timer may be
            self._changed.notify_all()  # waiting for this very worker, busy until now
            await self._changed.wait_for(lambda: n.timer is None)
            n.timer, n.since = who, time.monotonic()
            n.stats = replace(n.stats, queued=n.stats.queued + n.since - asked)
            n.paused.discard(who)
            self._changed.notify_all()
            await self._changed.wait_for(lambda: not (n.busy - n.paused - {who}))
            n.stats = replace(n.stats, parking=n.stats.parking + time.monotonic() - n.since)

    async def end_timing(self, node: str, who: int) -> None:
        async with self._changed:
            n = self._node(node)
            if n.timer == who:
                n.timer = None
                s, held, driver = n.stats, time.monotonic() - n.since, who == DRIVER
                n.stats = replace(s, timings=s.timings + 1, held=s.held + held, by_driver=s.by_driver + driver,
                                  driver_held=s.driver_held + held * driver)
            self._changed.notify_all()

    def stats(self) -> dict[str, PlaceStats]:
        """Each place's ``PlaceStats`` so far."""
        return {node: n.stats for node, n in self._nodes.items()}

    async def forget(self, who: int) -> None:
        """A worker died: nobody waits for it any more, and a timing it held is over."""
        async with self._changed:
            for n in self._nodes.values():
                n.busy.discard(who)
                n.paused.discard(who)
                if n.timer == who:
                    n.timer = None
            self._changed.notify_all()


def place(node: str, gpus: list[str]) -> str:
    """Where a worker's timings happen: its node's CPUs, or the GPUs Ray gave it on that node."""
    return f"{node}/gpu{','.join(gpus)}" if gpus else node


def driver_gpus() -> list[str]:
    """The GPU this process's ``cuda`` is (the first visible one)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")[0].strip()
    return [visible or "0"]


class GateClient:
    """The ``evaluators.quiet.Quiet`` of one Ray worker. Timing on the CPU uses all the node's
    cores, as a lone process would (the others are paused), so latency does not depend on
    --workers. ``gpus``: the GPU ids this worker trains and times on (none: the CPU)."""

    def __init__(self, gate: Any, who: int, gpus: Sequence[int | str] | None = None) -> None:
        self.gate, self.who = gate, who
        self.gpus = [str(g) for g in gpus or []]
        self.node = place(ray.get_runtime_context().get_node_id(), self.gpus)
        self.timing_threads = len(os.sched_getaffinity(0))
        self._poll = None  # pending timing_wanted call while training
        self._timing = False  # holds the place: a measuring section inside another is part of it

    @contextlib.contextmanager
    def measuring(self) -> Iterator[None]:
        import torch

        if self._timing:
            yield
            return
        ray.get(self.gate.begin_timing.remote(self.node, self.who))
        threads = torch.get_num_threads()
        torch.set_num_threads(self.timing_threads)
        self._timing = True
        try:
            yield
        finally:
            self._timing = False
            torch.set_num_threads(threads)
            ray.get(self.gate.end_timing.remote(self.node, self.who))

    @contextlib.contextmanager
    def training(self) -> Iterator[None]:
        if self._poll is not None:  # the inner end would leave the outer section unguarded
            raise RuntimeError("quiet.training() sections do not nest")
        ray.get(self.gate.begin_training.remote(self.node, self.who))
        self._poll = self.gate.timing_wanted.remote(self.node)
        try:
            yield
        finally:
            self._poll = None
            ray.get(self.gate.end_training.remote(self.node, self.who))

    def checkpoint(self) -> None:
        # a local readiness check (~0.1 ms), not a round trip to the gate
        if self._poll is not None and ray.wait([self._poll], timeout=0)[0]:
            if self.gpus:  # steps queued on the GPU finish before the timer is let in
                import torch

                if torch.cuda.is_initialized():
                    torch.cuda.synchronize()
            ray.get(self.gate.pause.remote(self.node, self.who))
            self._poll = self.gate.timing_wanted.remote(self.node)
