"""Cell spaces: stages of conv / depthwise-separable / inverted-residual cells whose choices a
space file states (``spacefile``): the built-in ``mobile`` and ``mobile224`` are such files
(``spaces/builtin/``), and so is a user's own. An Optuna trial samples each choice by a fixed
name (``stem_width``, ``act``, ``s{i}_depth`` ...), the same on every ask."""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace
from typing import Any

from . import spacefile
from .genotype import KINDS, Exit, Genotype, Head, Stage, Stem
from .space import Evaluated, Space, Suggests
from .spacefile import SpaceSpec


def scaled(width: int, multiplier: float) -> int:
    """A width times a width multiplier, as MobileNet rounds it: to a multiple of 8, at least 8,
    and never more than 10 % below the product. A multiplier of 1 keeps every width as written."""
    if multiplier == 1.0:
        return width
    target = width * multiplier
    rounded = max(8, int(target + 4) // 8 * 8)
    return rounded + 8 if rounded < 0.9 * target else rounded


def stage_strides(input_shape: tuple[int, int, int], num_stages: int) -> tuple[int, tuple[int, ...]]:
    """The resolution rule (``stride: auto``): stem stride and per-stage strides scaled to the
    input: the whole network downsamples 4x below 16 pixels (8x8 digits end at 2x2), 8x below 64
    (28 -> 4, 32 -> 4), 32x above (224 -> 7). Stages 1, 2, ... take the stride-2 steps first;
    stage 0 only when every stage must."""
    side = min(input_shape[1:])
    factor = 4 if side < 16 else 8 if side < 64 else 32
    stem = 2 if side >= 64 else 1
    downs = min(num_stages, int(math.log2(factor // stem)))
    order = [*range(1, num_stages), 0][:downs]
    return stem, tuple(2 if i in order else 1 for i in range(num_stages))


@dataclass(frozen=True)
class CellSpace:
    spec: SpaceSpec
    source: str = ""  # the file it was read from ("" for a built-in)
    exits: bool = False  # also sample early-exit heads (the spec's ``exits``)
    evaluated: Evaluated = Evaluated.TRAINED

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def text(self) -> str:
        """The space as a file, canonical (what a study remembers, what `search spaces --show` prints)."""
        return spacefile.dump(self.spec)

    @property
    def supports_exits(self) -> bool:
        exits = self.spec.exits
        return exits is not None and bool(self.spec.exit_places) and any(exits.widths)

    @property
    def description(self) -> str:
        return self.spec.description or (f"{len(self.spec.stages)} stages of "
                                         f"{'/'.join(sorted({k for s in self.spec.stages for k in s.kinds}))} cells")

    def choices(self) -> dict[str, tuple]:
        s = self.spec
        c: dict[str, tuple] = {"stem_width": s.stem.widths}
        if s.activations:
            c["act"] = s.activations
        if s.width_multipliers:
            c["width_mult"] = s.width_multipliers
        for i, stage in enumerate(s.stages):
            c[f"s{i}_depth"] = stage.depths
            c[f"s{i}_width"] = stage.widths
            c[f"s{i}_kind"] = stage.kinds
            c[f"s{i}_kernel"] = stage.kernels
            if "ir" in stage.kinds:
                c[f"s{i}_expansion"] = stage.expansions
            c[f"s{i}_se"] = stage.se
            if stage.activations:
                c[f"s{i}_act"] = stage.activations
        c["head_width"] = s.head.widths
        if len(s.head.hidden) > 1:
            c["head_hidden"] = s.head.hidden
        if self.exits and s.exits:
            for i in s.exit_places:
                c[f"exit{i}_width"] = s.exits.widths
        return c

    def with_exits(self) -> Space:
        return replace(self, exits=True)

    def sample(self, trial: Suggests, input_shape: tuple[int, int, int] | None) -> Genotype:
        """Ask ``trial`` for every choice (a fixed set of names, so model-based samplers see one
        space) and decode them into a genotype."""
        p = {name: trial.suggest_categorical(name, list(options)) for name, options in self.choices().items()}
        return self.decode(p, input_shape)

    def strides(self, input_shape: tuple[int, int, int] | None) -> tuple[int, tuple[int, ...]]:
        s = self.spec
        if not s.strides_auto:
            return int(s.stem.stride), tuple(int(st.stride) for st in s.stages)
        if input_shape is None:
            raise ValueError(f"space {s.name} scales its strides to the input: give its shape")
        return stage_strides(input_shape, len(s.stages))

    def input_problem(self, input_shape: tuple[int, int, int]) -> str | None:
        """Why inputs of ``input_shape`` cannot go through this space's networks, or None: fixed
        strides that halve the input more often than its side allows."""
        stem, strides = self.strides(input_shape)
        steps = [stem, *strides].count(2)
        side = min(input_shape[1:])
        if 2 ** steps > side:
            return (f"space {self.name} has {steps} stride-2 steps ({2 ** steps}x downsampling), more than a "
                    f"{input_shape[1]}x{input_shape[2]} input allows (at most {int(math.log2(side))}); use "
                    f"--resolution {2 ** steps} or more, or a space with fewer stride-2 steps")
        return None

    def decode(self, p: dict[str, Any], input_shape: tuple[int, int, int] | None) -> Genotype:
        s = self.spec
        stem_stride, strides = self.strides(input_shape)
        act = p.get("act")
        width = functools.partial(scaled, multiplier=p.get("width_mult", 1.0))
        stages = tuple(
            Stage(kind=p[f"s{i}_kind"], channels=width(p[f"s{i}_width"]), repeats=p[f"s{i}_depth"],
                  kernel=p[f"s{i}_kernel"], stride=strides[i],
                  expansion=float(p[f"s{i}_expansion"]) if p[f"s{i}_kind"] == "ir" else 1.0,
                  se=p[f"s{i}_se"], act=p[f"s{i}_act"] if f"s{i}_act" in p else p["act"])
            for i in range(len(s.stages)))
        last = stages[-1].act  # the head and exits take the network's activation, else the last stage's
        exits = tuple(Exit(after=i, channels=p[f"exit{i}_width"], act=act or stages[i].act)
                      for i in (s.exit_places if self.exits else ()) if p[f"exit{i}_width"])
        return Genotype(stem=Stem(width(p["stem_width"]), s.stem.kernel, stem_stride, act or stages[0].act),
                        stages=stages,
                        head=Head(channels=p["head_width"], hidden=p.get("head_hidden", s.head.hidden[0]),
                                  act=act or last, dropout=s.head.dropout), exits=exits)

    def canonical(self, genotype: Genotype) -> Genotype:
        return genotype  # decode already drops what does not change the network (e.g. e of a conv)

    def cost_features(self, genotype: Genotype) -> list[float]:
        """Layers of each kind, and of those with squeeze-excitation and with stride 2: a small
        network's latency is mostly a cost per layer run (with the network's MACs and parameters,
        which the screen counts)."""
        layers = [(st.kind, st.se > 0, st.stride == 2 and i == 0) for st in genotype.stages for i in range(st.repeats)]
        return ([float(sum(kind == k for kind, _, _ in layers)) for k in KINDS]
                + [float(sum(se for _, se, _ in layers)), float(sum(s2 for _, _, s2 in layers)),
                   float(len(genotype.exits))])

    def features(self, params: dict[str, Any]) -> list[float]:
        """What a surrogate model reads: numeric choices by their rank in [0, 1], the others one-hot."""
        out: list[float] = []
        for name, options in self.choices().items():
            if all(isinstance(o, (int, float)) for o in options):
                out.append(options.index(params[name]) / max(len(options) - 1, 1))
            else:
                out += [float(params[name] == o) for o in options]
        return out
