"""The genotype language: a network as plain data with one compact text form.

A genotype reads like timm's block strings, one section per comma:

    stem_c32_k3_s2_relu6, ir_r2_k3_s2_e6_c24_relu6, exit_c32_relu, ..., head_c1280_relu6

- ``stem_c{channels}_k{kernel}_s{stride}_{act}``: the first conv.
- a stage, ``{kind}_r{repeats}_k{kernel}_s{stride}[_e{expansion}]_c{channels}[_se{ratio}]_{act}``:
  ``repeats`` cells of one kind, the first with the stage's stride. Kinds: ``conv`` (KxK conv),
  ``ds`` (depthwise-separable), ``ir`` (inverted residual; the only kind with ``e``).
- ``exit_c{channels}_{act}``: an early-exit head on the output of the stage before it.
- ``head[_c{channels}][_f{hidden}]_{act}[_d{dropout}]``: optional 1x1 conv, global pool,
  optional hidden linear layer, then the classifier.

``parse(str(g)) == g`` for every genotype; ``str`` always gives the canonical form.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

KINDS = ("conv", "ds", "ir")
ACTIVATIONS = ("relu", "relu6", "hswish")


class GenotypeError(ValueError):
    """Genotype text or fields that do not describe a network."""


def _num(x: float) -> str:
    # Shortest text that parses back to the same float: 6.0 -> "6", 2.3 -> "2.3".
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _check(cond: object, msg: str) -> None:
    if not cond:
        raise GenotypeError(msg)


@dataclass(frozen=True)
class Stem:
    channels: int
    kernel: int = 3
    stride: int = 1
    act: str = "relu"

    def __post_init__(self) -> None:
        _check(self.channels > 0 and self.kernel % 2 == 1 and self.kernel <= MAX_KERNEL and self.stride in (1, 2),
               f"bad stem {self!r}: channels > 0, odd kernel up to {MAX_KERNEL}, stride 1 or 2")
        _check(self.act in ACTIVATIONS, f"unknown activation {self.act!r}; one of {', '.join(ACTIVATIONS)}")

    def __str__(self) -> str:
        return f"stem_c{self.channels}_k{self.kernel}_s{self.stride}_{self.act}"


@dataclass(frozen=True)
class Stage:
    kind: str
    channels: int
    repeats: int = 1
    kernel: int = 3
    stride: int = 1
    expansion: float = 1.0
    se: float = 0.0
    act: str = "relu"

    def __post_init__(self) -> None:
        _check(self.kind in KINDS, f"unknown cell kind {self.kind!r}; one of {', '.join(KINDS)}")
        _check(self.channels > 0 and self.repeats > 0, f"bad stage {self!r}: channels and repeats > 0")
        _check(self.kernel % 2 == 1 and self.kernel <= MAX_KERNEL, f"bad stage {self!r}: kernel must be odd, "
                                                                 f"up to {MAX_KERNEL}")
        _check(self.stride in (1, 2), f"bad stage {self!r}: stride 1 or 2")
        _check(self.expansion >= 1.0, f"bad stage {self!r}: expansion >= 1")
        _check(self.kind == "ir" or self.expansion == 1.0, f"bad stage {self!r}: only ir cells expand")
        _check(0.0 <= self.se < 1.0, f"bad stage {self!r}: se ratio in [0, 1)")
        _check(self.act in ACTIVATIONS, f"unknown activation {self.act!r}; one of {', '.join(ACTIVATIONS)}")

    def __str__(self) -> str:
        parts = [self.kind, f"r{self.repeats}", f"k{self.kernel}", f"s{self.stride}"]
        if self.kind == "ir":
            parts.append(f"e{_num(self.expansion)}")
        parts.append(f"c{self.channels}")
        if self.se:
            parts.append(f"se{_num(self.se)}")
        parts.append(self.act)
        return "_".join(parts)


@dataclass(frozen=True)
class Exit:
    """An early-exit classifier on the output of stage ``after`` (0-based)."""
    after: int
    channels: int
    act: str = "relu"

    def __post_init__(self) -> None:
        _check(self.channels > 0 and self.after >= 0, f"bad exit {self!r}")
        _check(self.act in ACTIVATIONS, f"unknown activation {self.act!r}; one of {', '.join(ACTIVATIONS)}")

    def __str__(self) -> str:
        return f"exit_c{self.channels}_{self.act}"


@dataclass(frozen=True)
class Head:
    channels: int = 0  # 1x1 conv before pooling; 0 = none
    hidden: int = 0  # hidden linear layer after pooling; 0 = none
    act: str = "relu"
    dropout: float = 0.0

    def __post_init__(self) -> None:
        _check(self.channels >= 0 and self.hidden >= 0 and 0.0 <= self.dropout < 1.0, f"bad head {self!r}")
        _check(self.act in ACTIVATIONS, f"unknown activation {self.act!r}; one of {', '.join(ACTIVATIONS)}")

    def __str__(self) -> str:
        parts = ["head"]
        if self.channels:
            parts.append(f"c{self.channels}")
        if self.hidden:
            parts.append(f"f{self.hidden}")
        parts.append(self.act)
        if self.dropout:
            parts.append(f"d{_num(self.dropout)}")
        return "_".join(parts)


@dataclass(frozen=True)
class Genotype:
    stem: Stem
    stages: tuple[Stage, ...]
    head: Head = Head()
    exits: tuple[Exit, ...] = ()

    def __post_init__(self) -> None:
        _check(len(self.stages) > 0, "a genotype needs at least one stage")
        afters = [e.after for e in self.exits]
        _check(afters == sorted(set(afters)), "exits must sit after distinct stages, in order")
        _check(all(a < len(self.stages) - 1 for a in afters), "an exit must come before the last stage")

    @property
    def uses_exits(self) -> bool:
        return bool(self.exits)

    def __str__(self) -> str:
        sections = [str(self.stem)]
        exits = {e.after: e for e in self.exits}
        for i, stage in enumerate(self.stages):
            sections.append(str(stage))
            if i in exits:
                sections.append(str(exits[i]))
        sections.append(str(self.head))
        return ", ".join(sections)

    @staticmethod
    def parse(text: str) -> Genotype:
        return parse(text)


_FIELD = re.compile(r"^([a-z]+?)(\d+(?:\.\d+)?)$")
MAX_KERNEL = 31  # the largest kernels in use (RepLKNet) are 31; a larger one only burns time
MAX_NUMBER = 10**7  # channels, repeats, widths: far past any network here, far below C's int


def _fields(section: str, allowed: dict[str, type]) -> tuple[dict[str, Any], str | None]:
    """Split 'ir_r2_k3_..._relu6' (less its kind) into numeric fields (each of its ``allowed``
    type) and the activation."""
    values: dict[str, Any] = {}
    act = None
    for token in section.split("_")[1:]:
        if token in ACTIVATIONS:
            _check(act is None, f"two activations in {section!r}")
            act = token
            continue
        m = _FIELD.match(token)
        if m is None or m.group(1) not in allowed:
            raise GenotypeError(f"unknown field {token!r} in {section!r}; fields: {', '.join(allowed)} and an "
                                f"activation ({', '.join(ACTIVATIONS)})")
        key, raw = m.group(1), m.group(2)
        _check(len(raw) <= 12 and float(raw) <= MAX_NUMBER,
               f"field {token[:20]!r} in {section[:80]!r} is too large (at most {MAX_NUMBER:,})")
        _check(key not in values, f"field {key!r} given twice in {section!r}")
        _check(allowed[key] is float or "." not in raw, f"field {token!r} in {section!r} must be an integer")
        values[key] = allowed[key](raw)
    return values, act


def parse(text: str) -> Genotype:
    """Read genotype text; raises GenotypeError naming the bad section."""
    sections = [s.strip() for s in text.split(",") if s.strip()]
    _check(len(sections) >= 3, f"genotype text needs a stem, stages and a head: {text!r}")
    _check(sections[0].startswith("stem_"), f"genotype text must start with a stem section, got {sections[0]!r}")
    _check(sections[-1] == "head" or sections[-1].startswith("head_"),
           f"genotype text must end with a head section, got {sections[-1]!r}")
    v, act = _fields(sections[0], {"c": int, "k": int, "s": int})
    _check("c" in v, f"stem needs channels (c): {sections[0]!r}")
    stem = Stem(channels=v["c"], kernel=v.get("k", 3), stride=v.get("s", 1), act=act or "relu")
    stages: list[Stage] = []
    exits: list[Exit] = []
    for section in sections[1:-1]:
        kind = section.split("_")[0]
        if kind == "exit":
            v, act = _fields(section, {"c": int})
            _check("c" in v and stages, f"an exit needs channels (c) and a stage before it: {section!r}")
            exits.append(Exit(after=len(stages) - 1, channels=v["c"], act=act or "relu"))
            continue
        _check(kind in KINDS, f"unknown section {section!r}; cell kinds: {', '.join(KINDS)}, or exit")
        v, act = _fields(section, {"r": int, "k": int, "s": int, "e": float, "c": int, "se": float})
        _check("c" in v, f"stage needs channels (c): {section!r}")
        stages.append(Stage(kind=kind, channels=v["c"], repeats=v.get("r", 1), kernel=v.get("k", 3),
                            stride=v.get("s", 1), expansion=v.get("e", 1.0), se=v.get("se", 0.0),
                            act=act or "relu"))
    v, act = _fields(sections[-1], {"c": int, "f": int, "d": float})
    head = Head(channels=v.get("c", 0), hidden=v.get("f", 0), act=act or "relu", dropout=v.get("d", 0.0))
    return Genotype(stem=stem, stages=tuple(stages), head=head, exits=tuple(exits))
