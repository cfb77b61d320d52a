"""Exact parameter and MAC counts."""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, input_shape: tuple[int, int, int],
               forward: Callable[[torch.Tensor], object] | None = None) -> int:
    """Multiply-adds of conv and linear layers for one input (FlopCounterMode counts 2 FLOPs per
    MAC; BatchNorm and activations are not counted, as in the published figures). ``forward``
    picks another entry point than ``model.__call__``."""
    was_training = model.training
    model.eval()
    try:
        x = torch.zeros(1, *input_shape, device=next(model.parameters()).device)
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            (forward or model)(x)
        return counter.get_total_flops() // 2
    finally:
        model.train(was_training)
