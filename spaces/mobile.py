"""The ``mobile`` space: MobileNet-style stages whose depth, width, cell kind, kernel, expansion
and squeeze-excitation an Optuna trial samples, with strides scaled to the input resolution."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

from .genotype import Exit, Genotype, Head, Stage, Stem
from .space import Evaluated, Space, Suggests

STAGE_WIDTHS = ((8, 16, 24), (16, 24, 32), (24, 32, 48), (32, 48, 64))


def stage_strides(input_shape: tuple[int, int, int], num_stages: int) -> tuple[int, tuple[int, ...]]:
    """Stem stride and per-stage strides scaled to the resolution: the whole network downsamples
    4x below 16 pixels (8x8 digits end at 2x2), 8x below 64 (28 -> 4, 32 -> 4), 32x above (224 -> 7).
    Stages 1, 2, ... take the stride-2 steps first; stage 0 only when every stage must."""
    side = min(input_shape[1:])
    factor = 4 if side < 16 else 8 if side < 64 else 32
    stem = 2 if side >= 64 else 1
    downs = min(num_stages, int(math.log2(factor // stem)))
    order = [*range(1, num_stages), 0][:downs]
    return stem, tuple(2 if i in order else 1 for i in range(num_stages))


@dataclass(frozen=True)
class MobileSpace:
    name: str = "mobile"
    evaluated: Evaluated = Evaluated.TRAINED
    supports_exits: bool = True
    exits: bool = False  # also sample early-exit heads after the middle stages
    stem_widths: tuple[int, ...] = (8, 16, 24)
    stage_widths: tuple[tuple[int, ...], ...] = STAGE_WIDTHS
    depths: tuple[int, ...] = (1, 2, 3)
    kinds: tuple[str, ...] = ("conv", "ds", "ir")
    kernels: tuple[int, ...] = (3, 5)
    expansions: tuple[int, ...] = (2, 4, 6)
    se_ratios: tuple[float, ...] = (0.0, 0.25)
    activations: tuple[str, ...] = ("relu", "hswish")
    head_widths: tuple[int, ...] = (0, 128, 256)
    exit_widths: tuple[int, ...] = (0, 32)  # 0 = no exit at that place

    @property
    def description(self) -> str:
        return ("MobileNet-style stages of conv / depthwise-separable / inverted-residual cells; "
                "strides scaled to the input resolution")

    def choices(self) -> dict[str, tuple]:
        c: dict[str, tuple] = {"stem_width": self.stem_widths, "act": self.activations}
        for i, widths in enumerate(self.stage_widths):
            c[f"s{i}_depth"] = self.depths
            c[f"s{i}_width"] = widths
            c[f"s{i}_kind"] = self.kinds
            c[f"s{i}_kernel"] = self.kernels
            c[f"s{i}_expansion"] = self.expansions
            c[f"s{i}_se"] = self.se_ratios
        c["head_width"] = self.head_widths
        if self.exits:
            for i in self._exit_places():
                c[f"exit{i}_width"] = self.exit_widths
        return c

    def _exit_places(self) -> range:
        return range(1, len(self.stage_widths) - 1)

    def with_exits(self) -> Space:
        return replace(self, exits=True)

    def sample(self, trial: Suggests, input_shape: tuple[int, int, int] | None) -> Genotype:
        """Ask ``trial`` for every choice (a fixed set of names, so model-based samplers see one
        space) and decode them into a genotype."""
        p = {name: trial.suggest_categorical(name, list(options)) for name, options in self.choices().items()}
        return self.decode(p, input_shape)

    def decode(self, p: dict, input_shape: tuple[int, int, int] | None) -> Genotype:
        if input_shape is None:
            raise ValueError("the mobile space scales its strides to the input: give its shape")
        stem_stride, strides = stage_strides(input_shape, len(self.stage_widths))
        act = p["act"]
        stages = tuple(
            Stage(kind=p[f"s{i}_kind"], channels=p[f"s{i}_width"], repeats=p[f"s{i}_depth"],
                  kernel=p[f"s{i}_kernel"], stride=strides[i],
                  expansion=float(p[f"s{i}_expansion"]) if p[f"s{i}_kind"] == "ir" else 1.0,
                  se=p[f"s{i}_se"], act=act)
            for i in range(len(self.stage_widths)))
        exits = tuple(Exit(after=i, channels=p[f"exit{i}_width"], act=act)
                      for i in (self._exit_places() if self.exits else ()) if p[f"exit{i}_width"])
        return Genotype(stem=Stem(p["stem_width"], 3, stem_stride, act), stages=stages,
                        head=Head(channels=p["head_width"], act=act), exits=exits)

    def canonical(self, genotype: Genotype) -> Genotype:
        return genotype  # decode already drops what does not change the network (e.g. e of a conv)

    def features(self, params: dict) -> list[float]:
        """What a surrogate model reads: numeric choices by their rank in [0, 1], the others one-hot."""
        out: list[float] = []
        for name, options in self.choices().items():
            if all(isinstance(o, (int, float)) for o in options):
                out.append(options.index(params[name]) / max(len(options) - 1, 1))
            else:
                out += [float(params[name] == o) for o in options]
        return out
