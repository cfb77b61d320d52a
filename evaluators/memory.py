"""Peak memory of one batch-1 forward: the weights plus the most activation memory alive at once.

Measured, not estimated: every tensor eager PyTorch creates during the forward is seen as it is
made (a dispatch mode) and as it dies (a weak reference), its storage counted while any tensor
holds it. Kernels' scratch space is not a tensor and is not counted; the figure is what the
network itself holds, the same in any runtime that frees a tensor when its last reader is done.
"""
from __future__ import annotations

import weakref

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves


class _Live(TorchDispatchMode):
    """Elements of the storages alive, and their peak, over the ops run inside."""

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        # Nothing here runs under torch.compile: without this, the first forward in a process
        # imports torch._dynamo to wrap __torch_dispatch__ (1.7 s of every `search run`).
        return False

    def __init__(self, start: int) -> None:
        super().__init__()
        self.live = self.peak = start
        self.holders: dict[int, int] = {}  # storage address -> tensors alive that hold it

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor):
                self._hold(t)
        return out

    def _hold(self, t: torch.Tensor) -> None:
        storage = t.untyped_storage()
        key, elements = storage.data_ptr(), storage.nbytes() // t.element_size()
        if key not in self.holders:
            self.holders[key] = 0
            self.live += elements
            self.peak = max(self.peak, self.live)
        self.holders[key] += 1
        weakref.finalize(t, self._release, key, elements)

    def _release(self, key: int, elements: int) -> None:
        self.holders[key] -= 1
        if not self.holders[key]:
            del self.holders[key]
            self.live -= elements


def peak_memory_mb(model: nn.Module, input_shape: tuple[int, int, int], bytes_per_element: int = 4) -> float:
    """MB (2^20 bytes) of weights and buffers plus the peak of live activations (the input
    included) in one batch-1 forward on the CPU, at ``bytes_per_element`` (4: float32; 1: int8)."""
    model = model.cpu().eval()
    weights = sum(t.numel() for t in (*model.parameters(), *model.buffers()))
    x = torch.randn(1, *input_shape)
    with torch.inference_mode(), _Live(x.numel()) as live:
        out = model(x)
        del out
    return (weights + live.peak) * bytes_per_element / 2**20
