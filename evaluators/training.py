"""Training with a small budget, and accuracy on a split."""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from hwnas.spaces import Network

from . import quiet


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


PRECISIONS = ("fp32", "bf16")


def precision_problem(precision: str, device: str) -> str | None:
    """Why ``precision`` cannot train on ``device``, or None. bf16 autocast is for GPUs that
    support it (Ampere on): on these CPUs it runs several times slower than fp32."""
    if precision not in PRECISIONS:
        return f"unknown --precision {precision!r}; use {' or '.join(PRECISIONS)}"
    if precision == "bf16" and not device.startswith("cuda"):
        return "--precision bf16 trains under CUDA autocast; use it with --device cuda, or --precision fp32"
    return None


def train(model: Network, data: tuple[torch.Tensor, torch.Tensor], recipe: Recipe,
          device: str = "cpu", augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None
          ) -> Network:
    """AdamW with a one-cycle schedule; deterministic for a given recipe, seed and thread count.
    ``augment(batch, generator)`` transforms each training batch when given. Trains in channels_last
    memory format (1.35-1.8x faster on CPU for these nets); the model is returned contiguous.
    ``data`` may already be on ``device`` (a GPU worker keeps its data set there: see
    ``trial.device_data``), and then no batch crosses from the host; the shuffling and augmentation
    draws come from one CPU generator either way, so a seed gives the same batches on any device."""
    torch.manual_seed(recipe.seed)
    x, y = data
    model = model.to(device, memory_format=torch.channels_last).train()
    bf16 = torch.autocast("cuda", dtype=torch.bfloat16, enabled=recipe.precision == "bf16")
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    steps_per_epoch = math.ceil(len(x) / recipe.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, recipe.lr, total_steps=recipe.epochs * steps_per_epoch,
                                                pct_start=0.15)
    gen = torch.Generator().manual_seed(recipe.seed)
    has_exits = len(model.exits) > 0
    for epoch in range(recipe.epochs):
        finite = torch.ones((), dtype=torch.bool, device=device)
        order = torch.randperm(len(x), generator=gen).to(x.device)
        for i in range(0, len(x), recipe.batch_size):
            quiet.checkpoint()  # pauses here while a trial on the same cores times its model
            idx = order[i:i + recipe.batch_size]
            xb, yb = x[idx], y[idx].to(device)
            if augment is not None:
                xb = augment(xb, gen)
            xb = xb.to(device, memory_format=torch.channels_last)
            with bf16:
                if has_exits:
                    *early, final = model.forward_exits(xb)
                    loss = F.cross_entropy(final, yb) + recipe.exit_loss_weight * sum(
                        F.cross_entropy(o, yb) for o in early)
                else:
                    loss = F.cross_entropy(model(xb), yb)
            finite &= torch.isfinite(loss).all()  # read once an epoch: a read per step would stall a GPU's queue
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        if not finite:
            raise TrainingError(f"the loss became NaN or infinite in epoch {epoch + 1}")
    return model.to(memory_format=torch.contiguous_format).eval()


@torch.no_grad()
def accuracy_of(model: nn.Module, data: tuple[torch.Tensor, torch.Tensor], device: str = "cpu",
             batch_size: int = 512) -> float:
    model.eval()
    x, y = data
    correct = 0
    for i in range(0, len(x), batch_size):
        predicted = model(x[i:i + batch_size].to(device)).argmax(1)
        correct += (predicted == y[i:i + batch_size].to(predicted.device)).sum().item()
    return correct / len(x)
