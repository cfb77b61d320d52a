"""Exact parameter and MAC counts."""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, input_shape: tuple[int, int, int],
               forward: Callable[[torch.Tensor], object] | None = None) -> int:
    """Multiply-adds of the conv and linear layers that run for one input: each output element of
    a convolution costs (input channels / groups) x kernel area, of a linear layer its input
    features (what torch's FlopCounterMode counts, at 2 FLOPs per MAC: tests/evaluators checks
    them equal; BatchNorm and activations are not counted, as in the published figures).
    ``forward`` picks another entry point than ``model.__call__``. Counted with forward hooks, not
    FlopCounterMode: a dispatch mode imports torch._dynamo on first use, a second of every process."""
    total = 0

    def conv(m: nn.Conv2d, _: object, out: torch.Tensor) -> None:
        nonlocal total
        total += out.numel() * (m.in_channels // m.groups) * math.prod(m.kernel_size)

    def linear(m: nn.Linear, _: object, out: torch.Tensor) -> None:
        nonlocal total
        total += out.numel() * m.in_features

    hooks = [m.register_forward_hook(conv if isinstance(m, nn.Conv2d) else linear)
             for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    was_training = model.training
    model.eval()
    try:
        x = torch.zeros(1, *input_shape, device=next(model.parameters()).device)
        with torch.no_grad():
            (forward or model)(x)
        return total
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
