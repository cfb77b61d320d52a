"""Training with a small budget, and accuracy on a split."""
from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from hwnas.spaces import Network

from . import quiet
from .data import Split

# Validation and test images read at once. 64, not 512: on these CPUs a random mobile network
# reads Fashion-MNIST's 6,000 validation images in 0.35x the time at 64 (0.32x for 10,000 32x32
# RGB images) and its activations take an eighth of the memory; digits' 360 take 7 ms longer.
# Measured side by side in one process, 4 networks x 2 runs, medians. A GPU keeps 512 (it wants
# wide batches; not measured at other sizes).
EVAL_BATCH = 64
GPU_EVAL_BATCH = 512


def eval_batch(device: str) -> int:
    return EVAL_BATCH if device == "cpu" else GPU_EVAL_BATCH


class TrainingError(RuntimeError):
    """Training went wrong in a way that makes the trial a failure (NaN loss, ...)."""


@dataclass(frozen=True)
class Recipe:
    """How a candidate is trained: its fidelity (epochs, training subset, batch, resolution,
    augmentation) and the optimiser's settings."""
    epochs: int = 10
    batch_size: int = 64
    train_subset: int = 0  # train on this many training images (0 = all); see data.prepare
    resolution: int = 0  # resize images to this side (0 = as stored); see data.prepare
    augment: bool = True  # the data set's standard augmentation, where it has one
    lr: float = 0.005
    weight_decay: float = 1e-4
    exit_loss_weight: float = 0.5  # each early-exit head's loss weight; the main head weighs 1
    seed: int = 0
    precision: str = "fp32"  # one of PRECISIONS: "bf16" trains under CUDA bf16 autocast (weights stay fp32)
    # epochs after which a trial pauses to be judged (early stopping's rungs; see trial.evaluate).
    # The schedule does not change: a trial that goes on ends exactly as without pauses.
    rungs: tuple[int, ...] = ()


PRECISIONS = ("fp32", "bf16")


def precision_problem(precision: str, device: str) -> str | None:
    """Why ``precision`` cannot train on ``device``, or None. bf16 autocast is for GPUs that
    support it (Ampere on): on these CPUs it runs several times slower than fp32."""
    if precision not in PRECISIONS:
        return f"unknown --precision {precision!r}; use {' or '.join(PRECISIONS)}"
    if precision == "bf16" and not device.startswith("cuda"):
        return "--precision bf16 trains under CUDA autocast; use it with --device cuda, or --precision fp32"
    return None


def cycles_ending_at(ends: tuple[int, ...], epochs: int) -> tuple[tuple[int, int], ...]:
    """Learning-rate cycles that end (anneal) at each of ``ends`` and at ``epochs``: the per-rung
    schedule ``benchmarks/rung_correlation.py`` compares with one cycle over all epochs."""
    stops = [e for e in ends if 0 < e < epochs] + [epochs]
    return tuple(zip([0, *stops[:-1]], stops))


class Trainer:
    """One network's training, epoch by epoch: AdamW with a one-cycle schedule over all epochs;
    deterministic for a given recipe, seed and thread count. Trains in channels_last memory format
    (1.35-1.8x faster on CPU for these nets).

    Its ``state`` (weights, optimiser, schedule, random generators, epochs done) is bytes: a trial
    paused at a rung hands it back, and the trial goes on from it in any process, exactly as if it
    had never paused. ``cycles``: other learning-rate cycles as (first epoch, end epoch) spans
    (``cycles_ending_at``), for measuring them; the one cycle measured best (docs/early-stopping.md).
    ``fused``: AdamW's update fused or not, for measuring it (None: fused on a GPU only, below)."""

    def __init__(self, model: Network, recipe: Recipe, samples: int, device: str = "cpu",
                 state: bytes | None = None, cycles: tuple[tuple[int, int], ...] = (),
                 fused: bool | None = None) -> None:
        torch.manual_seed(recipe.seed)
        # torch's stub of Module.to omits memory_format, which it takes
        self.model = model.to(device, memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.recipe, self.device = recipe, device
        self.cycles = cycles or ((0, recipe.epochs),)
        self.steps_per_epoch = math.ceil(samples / recipe.batch_size)
        # On a GPU the update is fused, one kernel for every parameter: small networks' steps are
        # launch-bound there. Not on the CPU, though an epoch there took 0.93 and 0.905 of the
        # per-parameter loop's time (two runs, 4 mobile networks x 3 on digits, side by side,
        # medians): same update, other rounding, so every CPU figure would change in its last digits.
        if fused is None:
            fused = True if device.startswith("cuda") else None
        self.opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay, fused=fused)
        self.gen = torch.Generator().manual_seed(recipe.seed)
        self.epoch = 0
        self.sched = self._cycle()
        if state is not None:
            self._load(state)

    def _cycle(self) -> torch.optim.lr_scheduler.OneCycleLR:
        """The schedule of the cycle the next epoch is in."""
        start, end = next((a, b) for a, b in self.cycles if a <= self.epoch < b)
        return torch.optim.lr_scheduler.OneCycleLR(self.opt, self.recipe.lr, pct_start=0.15,
                                                   total_steps=(end - start) * self.steps_per_epoch)

    def state(self) -> bytes:
        buffer = io.BytesIO()
        cuda = torch.cuda.get_rng_state(self.device) if self.device.startswith("cuda") else None  # dropout's there
        torch.save({"epoch": self.epoch, "model": self.model.state_dict(), "opt": self.opt.state_dict(),
                    "sched": self.sched.state_dict(), "gen": self.gen.get_state(),
                    "rng": torch.get_rng_state(), "cuda_rng": cuda}, buffer)
        return buffer.getvalue()

    def _load(self, state: bytes) -> None:
        # onto the CPU: generator states must be CPU tensors there; the model's and the optimiser's
        # load_state_dict copy theirs to where the parameters are
        saved = torch.load(io.BytesIO(state), map_location="cpu", weights_only=True)
        self.epoch = saved["epoch"]
        self.model.load_state_dict(saved["model"])
        self.sched = self._cycle()  # before the optimiser's state: making a schedule resets its lr and betas
        self.opt.load_state_dict(saved["opt"])
        self.sched.load_state_dict(saved["sched"])
        self.gen.set_state(saved["gen"])
        torch.set_rng_state(saved["rng"])
        if saved.get("cuda_rng") is not None and self.device.startswith("cuda"):
            torch.cuda.set_rng_state(saved["cuda_rng"], self.device)

    def train_epoch(self, data: Split,
                    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None) -> None:
        """One epoch. ``data`` may already be on the device (a GPU worker keeps its data set there:
        see ``trial.device_data``), and then no batch crosses from the host; else each batch
        crosses as levels, standardised where it trains. The shuffling and augmentation draws
        come from one CPU generator either way, so a seed gives the same batches on any device.
        ``augment(batch, generator)`` transforms each standardised batch when given."""
        if self.epoch and any(a == self.epoch for a, _ in self.cycles):
            self.sched = self._cycle()  # the next cycle begins
        model, recipe, device = self.model.train(), self.recipe, self.device
        bf16 = torch.autocast("cuda", dtype=torch.bfloat16, enabled=recipe.precision == "bf16")
        has_exits = len(model.exits) > 0
        finite = torch.ones((), dtype=torch.bool, device=device)
        order = torch.randperm(len(data), generator=self.gen).to(data.levels.device)
        for i in range(0, len(data), recipe.batch_size):
            quiet.checkpoint()  # pauses here while a trial on the same cores times its model
            idx = order[i:i + recipe.batch_size]
            xb, yb = data.images(idx, device), data.labels[idx].to(device)
            if augment is not None:
                xb = augment(xb, self.gen)
            xb = xb.contiguous(memory_format=torch.channels_last)
            with bf16:
                if has_exits:
                    *early, final = model.forward_exits(xb)
                    loss = F.cross_entropy(final, yb) + recipe.exit_loss_weight * sum(
                        F.cross_entropy(o, yb) for o in early)
                else:
                    loss = F.cross_entropy(model(xb), yb)
            finite &= torch.isfinite(loss).all()  # read once an epoch: a read per step would stall a GPU's queue
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            self.sched.step()
        self.epoch += 1
        if not finite:
            raise TrainingError(f"the loss became NaN or infinite in epoch {self.epoch}")

    def trained(self) -> Network:
        """The model, contiguous and in eval mode."""
        return self.model.to(memory_format=torch.contiguous_format).eval()


def train(model: Network, data: Split, recipe: Recipe,
          device: str = "cpu", augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None
          ) -> Network:
    """Every epoch of ``recipe`` in one go (see ``Trainer``); the model is returned contiguous."""
    trainer = Trainer(model, recipe, len(data), device)
    for _ in range(recipe.epochs):
        trainer.train_epoch(data, augment)
    return trainer.trained()


@torch.no_grad()
def accuracy_of(model: nn.Module, data: Split, device: str = "cpu", batch_size: int = 0) -> float:
    """Top-1 accuracy on a split, ``eval_batch(device)`` images at a time (or ``batch_size``). Batches
    go in channels_last, whatever the model's weights: on these CPUs a 32x32 RGB split is read
    1.8x faster so (4.3 vs 2.4 s for 512 images through a trained mobile network with contiguous
    weights)."""
    batch_size = batch_size or eval_batch(device)
    model.eval()
    correct = 0
    for i in range(0, len(data), batch_size):
        x = data.images(slice(i, i + batch_size), device).contiguous(memory_format=torch.channels_last)
        predicted = model(x).argmax(1)
        correct += (predicted == data.labels[i:i + batch_size].to(predicted.device)).sum().item()
    return correct / len(data)
