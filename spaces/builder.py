"""Genotype + input shape + class count -> nn.Module."""
from __future__ import annotations

import torch
from torch import nn

from .blocks import ClassifierHead, ConvBnAct, InvertedResidual, StandardConv
from .genotype import Genotype, Stage


def _cell(stage: Stage, cin: int, stride: int) -> nn.Module:
    if stage.kind == "conv":
        return StandardConv(cin, stage.channels, stage.kernel, stride, stage.se, stage.act)
    return InvertedResidual(cin, stage.channels, stage.kernel, stride, stage.expansion, stage.se, stage.act)


class Network(nn.Module):
    """A built genotype. ``forward`` runs the main path only; ``forward_exits`` also returns the
    early-exit heads' logits (first exit first, the main head last)."""

    def __init__(self, genotype: Genotype, input_shape: tuple[int, int, int], num_classes: int) -> None:
        super().__init__()
        self.genotype = genotype
        self.input_shape = tuple(input_shape)
        self.num_classes = num_classes
        g = genotype
        self.stem = ConvBnAct(input_shape[0], g.stem.channels, g.stem.kernel, g.stem.stride, act=g.stem.act)
        stages, cin = [], g.stem.channels
        for stage in g.stages:
            cells = []
            for i in range(stage.repeats):
                cells.append(_cell(stage, cin, stage.stride if i == 0 else 1))
                cin = stage.channels
            stages.append(nn.Sequential(*cells))
        self.stages = nn.ModuleList(stages)
        self.exit_after = [e.after for e in g.exits]
        self.exits = nn.ModuleList(
            ClassifierHead(g.stages[e.after].channels, num_classes, channels=e.channels, act=e.act)
            for e in g.exits)
        self.head = ClassifierHead(cin, num_classes, g.head.channels, g.head.hidden, g.head.act, g.head.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return self.head(x)

    def forward_exits(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        x = self.stem(x)
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i in self.exit_after:
                outputs.append(self.exits[self.exit_after.index(i)](x))
        outputs.append(self.head(x))
        return outputs

    @torch.no_grad()
    def predict_early_exit(self, x: torch.Tensor, threshold: float) -> tuple[torch.Tensor, int]:
        """Dynamic inference of one input: the logits of the first head whose softmax confidence
        reaches ``threshold`` (the main head otherwise) and that head's index (main head = number
        of exits). The exported model.py runs the same operations in the same order."""
        if x.shape[0] != 1:
            raise ValueError(f"predict_early_exit takes one input, got {x.shape[0]}")
        x = self.stem(x)
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i in self.exit_after:
                k = self.exit_after.index(i)
                logits = self.exits[k](x)
                if logits.softmax(1).max().item() >= threshold:
                    return logits, k
        return self.head(x), len(self.exits)


def build(genotype: Genotype, input_shape: tuple[int, int, int], num_classes: int) -> Network:
    return Network(genotype, input_shape, num_classes)
