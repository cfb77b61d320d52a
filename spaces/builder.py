"""Genotype + input shape + class count -> nn.Module, through one walk over a network's stages
and exits (``layout``) that the builder, early-exit costing and code generation share."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from .blocks import ClassifierHead, ConvBnAct, InvertedResidual, StandardConv
from .genotype import Exit, Genotype, Stage
from .limits import check_memory

NEVER = 2.0  # an exit threshold no softmax confidence reaches: the exits are never taken


def _side(side: int, stride: int) -> int:
    return -(-side // stride)  # "same" padding with an odd kernel: ceil(side / stride)


@dataclass(frozen=True)
class StagePlan:
    """One stage as built: each cell's input channels and stride, the output shape, and the early
    exit (its index among the exits) that reads this stage's output, if any."""
    index: int
    stage: Stage
    cells: tuple[tuple[int, int], ...]  # (input channels, stride) per cell
    out_shape: tuple[int, int, int]
    exit: tuple[int, Exit] | None


@dataclass(frozen=True)
class Layout:
    stem_shape: tuple[int, int, int]  # the stem's output
    stages: tuple[StagePlan, ...]

    @property
    def head_channels(self) -> int:
        return self.stages[-1].out_shape[0]


def layout(genotype: Genotype, input_shape: tuple[int, int, int]) -> Layout:
    """The walk: stem, then every stage's cells (the first takes the stage's stride), with shapes."""
    g = genotype
    c, h, w = g.stem.channels, _side(input_shape[1], g.stem.stride), _side(input_shape[2], g.stem.stride)
    stem_shape = (c, h, w)
    exits = {e.after: (k, e) for k, e in enumerate(g.exits)}
    plans = []
    for i, stage in enumerate(g.stages):
        cells = tuple((c if r == 0 else stage.channels, stage.stride if r == 0 else 1) for r in range(stage.repeats))
        c, h, w = stage.channels, _side(h, stage.stride), _side(w, stage.stride)
        plans.append(StagePlan(i, stage, cells, (c, h, w), exits.get(i)))
    return Layout(stem_shape, tuple(plans))


def cell(stage: Stage, cin: int, stride: int) -> nn.Module:
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
        self.layout = plan = layout(genotype, input_shape)
        g = genotype
        self.stem = ConvBnAct(input_shape[0], g.stem.channels, g.stem.kernel, g.stem.stride, act=g.stem.act)
        self.stages = nn.ModuleList(nn.Sequential(*(cell(s.stage, cin, stride) for cin, stride in s.cells))
                                    for s in plan.stages)
        self.exit_after = [e.after for e in g.exits]
        self.exits = nn.ModuleList(ClassifierHead(s.out_shape[0], num_classes, channels=s.exit[1].channels,
                                                  act=s.exit[1].act) for s in plan.stages if s.exit)
        self.head = ClassifierHead(plan.head_channels, num_classes, g.head.channels, g.head.hidden, g.head.act,
                                   g.head.dropout)

    def heads(self, x: torch.Tensor, exits: bool = True) -> Iterator[tuple[int, torch.Tensor]]:
        """Run the network lazily: yields (k, logits) at each exit as the stages reach it, then
        (number of exits, the main head's logits). Stop iterating to stop computing."""
        x = self.stem(x)
        for plan, stage in zip(self.layout.stages, self.stages):
            x = stage(x)
            if exits and plan.exit:
                k = plan.exit[0]
                yield k, self.exits[k](x)
        yield len(self.exits), self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        *_, (_, logits) = self.heads(x, exits=False)
        return logits

    def forward_exits(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [logits for _, logits in self.heads(x)]

    @torch.no_grad()
    def predict_early_exit(self, x: torch.Tensor, threshold: float) -> tuple[torch.Tensor, int]:
        """Dynamic inference of one input: the logits of the first head whose softmax confidence
        reaches ``threshold`` (the main head otherwise) and that head's index (main head = number
        of exits). The exported model.py runs the same operations in the same order."""
        if x.shape[0] != 1:
            raise ValueError(f"predict_early_exit takes one input, got {x.shape[0]}")
        for k, logits in self.heads(x):
            if k == len(self.exits) or logits.softmax(1).max().item() >= threshold:
                return logits, k
        raise AssertionError("heads() always ends with the main head")

    def summary(self) -> str:
        """The network, printable: genotype, input, parameters per part with its genotype section,
        then its modules."""
        g = self.genotype
        sections = {"stem": [str(g.stem)], "stages": [str(s) for s in g.stages],
                    "exits": [str(e) for e in g.exits], "head": [str(g.head)]}
        lines = [f"genotype: {g}", f"input: {'x'.join(map(str, self.input_shape))}, classes: {self.num_classes}",
                 f"params: {sum(p.numel() for p in self.parameters()):,}", "", "params per part:"]
        for name, part in self.named_children():
            subs = list(part) if isinstance(part, nn.ModuleList) else [part]
            for i, sub in enumerate(subs):
                label = f"{name}[{i}]" if isinstance(part, nn.ModuleList) else name
                stated = sections.get(name, [])
                lines.append(f"  {label:<10} {sum(p.numel() for p in sub.parameters()):>10,}  "
                             f"{stated[i] if i < len(stated) else ''}")
        return "\n".join([*lines, "", repr(self)]) + "\n"


def estimated_bytes(genotype: Genotype, input_shape: tuple[int, int, int], num_classes: int) -> int:
    """What building and running the network at batch 1 takes, about: its float32 weights (exact
    for convolutions and linear layers, which hold nearly all of them) and its two largest
    activations (a layer's input and output), without allocating any of it."""
    g, plan = genotype, layout(genotype, input_shape)
    weights = input_shape[0] * g.stem.channels * g.stem.kernel ** 2
    c, h, w = input_shape
    activations = [c * h * w, g.stem.channels * plan.stem_shape[1] * plan.stem_shape[2]]
    for s in plan.stages:
        st, (c, h, w) = s.stage, s.out_shape
        for cin, stride in s.cells:
            if st.kind == "conv":
                weights += cin * c * st.kernel ** 2
                mid = c
            else:
                mid = max(1, round(cin * st.expansion))
                weights += cin * mid + mid * st.kernel ** 2 + mid * c
            activations.append(mid * h * w * stride * stride)  # the expanded map, before its stride
        if s.exit:
            exit_width = s.exit[1].channels or c
            weights += c * s.exit[1].channels + exit_width * num_classes
    width = g.head.channels or plan.head_channels
    weights += plan.head_channels * g.head.channels + width * (g.head.hidden or num_classes)
    weights += g.head.hidden * num_classes
    largest = sorted(activations)[-2:]
    return 4 * (weights + sum(largest))


def build(genotype: Genotype, input_shape: tuple[int, int, int], num_classes: int) -> Network:
    """The network; TooLarge (before allocating anything) when it would pass the memory limit."""
    check_memory(estimated_bytes(genotype, input_shape, num_classes),
                 f"network {str(genotype)[:80]} at {'x'.join(map(str, input_shape))} with {num_classes:,} classes")
    return Network(genotype, input_shape, num_classes)
