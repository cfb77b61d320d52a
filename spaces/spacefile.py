"""A search space written as data: the YAML file a user writes (docs/spaces.md), read into
frozen dataclasses and validated on load. Every problem is one ``SpaceFileError`` line naming
the key (``stages[1].kernels``) and what is accepted. ``dump`` writes the canonical form: what a
study remembers of its space, and what ``search spaces --show`` prints.

    name: mobile                      # optional (default: the file's name)
    description: MobileNet-style ...  # optional
    activations: [relu, hswish]       # chosen once for the network (a stage may choose its own)
    width_multipliers: [0.5, 1.0]     # optional: one choice scales every width (MobileNet's alpha)
    stem: {widths: [8, 16, 24], kernel: 3, stride: auto}
    stages:                           # one or more, in order
      - {widths: [8, 16, 24], depths: [1, 2, 3], kinds: [conv, ds, ir], kernels: [3, 5],
         expansions: [2, 4, 6], se: [0.0, 0.25], stride: auto}
    head: {widths: [0, 128, 256], hidden: [0], dropout: 0.0}
    exits: {widths: [0, 32], after: [1, 2]}   # sampled with --exits; 0 = no exit there

``stride: auto`` everywhere (the default) is the resolution rule (``cells.stage_strides``);
otherwise every stride, the stem's and each stage's, is given as 1 or 2.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .genotype import ACTIVATIONS, KINDS, MAX_KERNEL, MAX_NUMBER

AUTO = "auto"
MAX_FILE_BYTES = 1_000_000  # a space is a page of YAML; a larger file is a mistake
MAX_STAGES = 64


class SpaceFileError(ValueError):
    """A space file that does not describe a space; the message is one line."""


@dataclass(frozen=True)
class StemChoices:
    widths: tuple[int, ...]
    kernel: int = 3
    stride: int | str = AUTO


@dataclass(frozen=True)
class StageChoices:
    widths: tuple[int, ...]
    depths: tuple[int, ...] = (1,)
    kinds: tuple[str, ...] = ("ir",)
    kernels: tuple[int, ...] = (3,)
    expansions: tuple[float, ...] = (6,)  # asked only where ``ir`` is among the kinds
    se: tuple[float, ...] = (0.0,)
    activations: tuple[str, ...] = ()  # () = the network's activation
    stride: int | str = AUTO


@dataclass(frozen=True)
class HeadChoices:
    widths: tuple[int, ...] = (0,)  # 1x1 conv before pooling; 0 = none
    hidden: tuple[int, ...] = (0,)  # hidden linear layer; 0 = none; asked only when there is a choice
    dropout: float = 0.0


@dataclass(frozen=True)
class ExitChoices:
    widths: tuple[int, ...] = (0,)  # 0 = no exit at that place
    after: tuple[int, ...] | None = None  # the stages exits may follow; None = all but the first and last


@dataclass(frozen=True)
class SpaceSpec:
    name: str
    stem: StemChoices
    stages: tuple[StageChoices, ...]
    description: str = ""
    activations: tuple[str, ...] = ()  # the network-wide choice; () when every stage has its own
    width_multipliers: tuple[float, ...] = ()  # one choice scaling every width; () = none
    head: HeadChoices = HeadChoices()
    exits: ExitChoices | None = None
    strides_auto: bool = field(default=True, compare=False)  # derived: every stride is "auto"

    @property
    def exit_places(self) -> tuple[int, ...]:
        if self.exits is None:
            return ()
        if self.exits.after is not None:
            return self.exits.after
        return tuple(range(1, len(self.stages) - 1))


# -- reading ------------------------------------------------------------------------------------

def load(path: str | Path) -> SpaceSpec:
    """Read and validate a space file; SpaceFileError (one line) when it is not one."""
    p = Path(path)
    where = f"space file {p}"
    try:
        if p.stat().st_size > MAX_FILE_BYTES:
            raise SpaceFileError(f"{where} is {p.stat().st_size:,} bytes; a space file is at most "
                                 f"{MAX_FILE_BYTES:,}")
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpaceFileError(f"{where} not found") from None
    except IsADirectoryError:
        raise SpaceFileError(f"{where} is a folder, not a file") from None
    except UnicodeDecodeError:
        raise SpaceFileError(f"{where} is not text (UTF-8)") from None
    except OSError as e:
        raise SpaceFileError(f"cannot read {where}: {e.strerror or e}") from None
    return loads(text, where, default_name=p.stem)


def loads(text: str, where: str = "space file", default_name: str = "space") -> SpaceSpec:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        problem = getattr(e, "problem", None) or " ".join(str(e).split())[:200]
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        raise SpaceFileError(f"{where} is not YAML: {at}{problem}") from None
    return _Reader(where).space(data, default_name)


TOP_KEYS = ("name", "description", "activations", "width_multipliers", "stem", "stages", "head", "exits")
STEM_KEYS = ("widths", "kernel", "stride")
STAGE_KEYS = ("widths", "depths", "kinds", "kernels", "expansions", "se", "activations", "stride")
HEAD_KEYS = ("widths", "hidden", "dropout")
EXIT_KEYS = ("widths", "after")


class _Reader:
    """Validates one file's data, naming each key by its path in the file."""

    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, key: str, message: str) -> SpaceFileError:
        return SpaceFileError(f"{self.where}: {key}: {message}")

    def mapping(self, value: Any, key: str, allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> dict:
        if not isinstance(value, dict):
            raise self.fail(key, f"must be a mapping with keys {', '.join(allowed)}")
        for k in value:
            if k not in allowed:
                raise self.fail(key, f"unknown key {str(k)[:40]!r}; keys: {', '.join(allowed)}")
        for k in required:
            if k not in value:
                raise self.fail(key, f"needs the key {k!r}")
        return value

    def choices(self, value: Any, key: str, check: Any, what: str) -> tuple:
        """A non-empty list of distinct options (a lone value counts as a list of one)."""
        options = value if isinstance(value, list) else [value]
        if not options:
            raise self.fail(key, f"an empty list; give at least one {what}")
        for o in options:
            problem = check(o)
            if problem:
                raise self.fail(key, f"{_show(o)} {problem}")
        seen = set()
        for o in options:
            if o in seen:
                raise self.fail(key, f"{_show(o)} appears twice")
            seen.add(o)
        return tuple(options)

    def space(self, data: Any, default_name: str) -> SpaceSpec:
        if not isinstance(data, dict):
            raise SpaceFileError(f"{self.where} must hold a mapping of keys ({', '.join(TOP_KEYS)}), "
                                 f"not {type(data).__name__}")
        d = self.mapping(data, "top level", TOP_KEYS, ("stem", "stages"))
        name = d.get("name", default_name)
        if not isinstance(name, str) or not name.strip() or len(name) > 100:
            raise self.fail("name", "must be text of 1 to 100 characters")
        description = d.get("description", "")
        if not isinstance(description, str):
            raise self.fail("description", "must be text")
        activations = self.choices(d["activations"], "activations", _activation, "activation") \
            if "activations" in d else ()
        multipliers = self.choices(d["width_multipliers"], "width_multipliers", _multiplier, "multiplier") \
            if "width_multipliers" in d else ()
        stem = self.stem(d["stem"])
        if not isinstance(d["stages"], list) or not d["stages"]:
            raise self.fail("stages", "must be a list of one or more stages")
        if len(d["stages"]) > MAX_STAGES:
            raise self.fail("stages", f"{len(d['stages'])} stages; at most {MAX_STAGES}")
        stages = tuple(self.stage(s, f"stages[{i}]") for i, s in enumerate(d["stages"]))
        for i, s in enumerate(stages):
            if not s.activations and not activations:
                raise self.fail(f"stages[{i}]", "has no activations, and the file gives no network-wide "
                                                f"'activations'; give one or the other ({', '.join(ACTIVATIONS)})")
        strides = [stem.stride, *(s.stride for s in stages)]
        auto = all(s == AUTO for s in strides)
        if not auto and AUTO in strides:
            key = "stem.stride" if stem.stride == AUTO else f"stages[{strides.index(AUTO) - 1}].stride"
            raise self.fail(key, "is auto while other strides are given: give every stride (the stem's and "
                                 "each stage's, 1 or 2) or none (auto: scaled to the input's resolution)")
        head = self.head(d.get("head", {}))
        exits = self.exits(d["exits"], len(stages)) if d.get("exits") is not None else None
        return SpaceSpec(name=name.strip(), description=description.strip(), activations=activations,
                         width_multipliers=multipliers,
                         stem=stem, stages=stages, head=head, exits=exits, strides_auto=auto)

    def stem(self, value: Any) -> StemChoices:
        d = self.mapping(value, "stem", STEM_KEYS, ("widths",))
        return StemChoices(widths=self.choices(d["widths"], "stem.widths", _width, "width"),
                           kernel=self.one(d.get("kernel", 3), "stem.kernel", _kernel),
                           stride=self.one(d.get("stride", AUTO), "stem.stride", _stride))

    def stage(self, value: Any, key: str) -> StageChoices:
        d = self.mapping(value, key, STAGE_KEYS, ("widths",))
        kinds = self.choices(d.get("kinds", ["ir"]), f"{key}.kinds", _kind, "cell kind")
        return StageChoices(
            widths=self.choices(d["widths"], f"{key}.widths", _width, "width"),
            depths=self.choices(d.get("depths", [1]), f"{key}.depths", _depth, "depth"),
            kinds=kinds,
            kernels=self.choices(d.get("kernels", [3]), f"{key}.kernels", _kernel, "kernel"),
            expansions=self.choices(d.get("expansions", [6]), f"{key}.expansions", _expansion, "expansion"),
            se=self.choices(d.get("se", [0.0]), f"{key}.se", _se, "ratio"),
            activations=self.choices(d["activations"], f"{key}.activations", _activation, "activation")
            if "activations" in d else (),
            stride=self.one(d.get("stride", AUTO), f"{key}.stride", _stride))

    def head(self, value: Any) -> HeadChoices:
        d = self.mapping(value, "head", HEAD_KEYS)
        dropout = d.get("dropout", 0.0)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
            raise self.fail("head.dropout", f"{_show(dropout)} is not a dropout rate; give a number in [0, 1)")
        return HeadChoices(widths=self.choices(d.get("widths", [0]), "head.widths", _width_or_none, "width"),
                           hidden=self.choices(d.get("hidden", [0]), "head.hidden", _width_or_none, "width"),
                           dropout=float(dropout))

    def exits(self, value: Any, stages: int) -> ExitChoices:
        d = self.mapping(value, "exits", EXIT_KEYS, ("widths",))
        widths = self.choices(d["widths"], "exits.widths", _width_or_none, "width")
        after = None
        if "after" in d:
            last = stages - 2  # an exit must come before the last stage
            if last < 0:
                raise self.fail("exits.after", "a space of one stage has no place for an exit")
            after = self.choices(d["after"], "exits.after",
                                 lambda a: _integer(a, 0, last, f"a stage index from 0 to {last} (not the last stage)"),
                                 "stage index")
            after = tuple(sorted(after))
        return ExitChoices(widths=widths, after=after)

    def one(self, value: Any, key: str, check: Any) -> Any:
        if isinstance(value, list):
            raise self.fail(key, f"takes one value, not a list ({_show(value)})")
        problem = check(value)
        if problem:
            raise self.fail(key, f"{_show(value)} {problem}")
        return value


def _show(value: Any) -> str:
    return repr(value)[:40]


def _integer(value: Any, low: int, high: int, what: str) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        return f"is not {what}"
    return None


def _width(v: Any) -> str | None:
    return _integer(v, 1, MAX_NUMBER, f"a width; widths are integers from 1 to {MAX_NUMBER:,}")


def _width_or_none(v: Any) -> str | None:
    return _integer(v, 0, MAX_NUMBER, f"a width; give an integer from 0 (none) to {MAX_NUMBER:,}")


def _depth(v: Any) -> str | None:
    return _integer(v, 1, 1000, "a depth; depths are integers from 1 to 1,000")


def _kernel(v: Any) -> str | None:
    if isinstance(v, int) and not isinstance(v, bool) and v % 2 == 0:
        return f"is even; kernels are odd integers from 1 to {MAX_KERNEL}"
    return _integer(v, 1, MAX_KERNEL, f"a kernel; kernels are odd integers from 1 to {MAX_KERNEL}")


def _stride(v: Any) -> str | None:
    return None if v == AUTO or (v in (1, 2) and not isinstance(v, bool)) else "is not a stride; give 1, 2 or auto"


def _kind(v: Any) -> str | None:
    return None if v in KINDS else f"is not a cell kind; kinds: {', '.join(KINDS)}"


def _activation(v: Any) -> str | None:
    return None if v in ACTIVATIONS else f"is not an activation; activations: {', '.join(ACTIVATIONS)}"


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _expansion(v: Any) -> str | None:
    return None if _number(v) and 1.0 <= v <= 64 else "is not an expansion; give a number from 1 to 64"


def _multiplier(v: Any) -> str | None:
    return None if _number(v) and 0.1 <= v <= 10 else "is not a width multiplier; give a number from 0.1 to 10"


def _se(v: Any) -> str | None:
    return None if _number(v) and 0.0 <= v < 1.0 else "is not a squeeze-excitation ratio; give a number in [0, 1)"


# -- writing ------------------------------------------------------------------------------------

def as_data(spec: SpaceSpec) -> dict[str, Any]:
    """The canonical data of a space: every key, lists for choices, nothing derived."""
    def plain(value: Any) -> Any:
        if isinstance(value, tuple):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    d = plain(asdict(spec))
    del d["strides_auto"]
    for stage in d["stages"]:
        if not stage["activations"]:
            del stage["activations"]
    for key in ("activations", "width_multipliers"):
        if not d[key]:
            del d[key]
    if d["exits"] is None:
        del d["exits"]
    elif d["exits"]["after"] is None:
        del d["exits"]["after"]
    order = TOP_KEYS
    return {k: d[k] for k in order if k in d}


def dump(spec: SpaceSpec) -> str:
    """The space as a file (canonical: ``loads(dump(s)) == s``), one stage a line."""
    d = as_data(spec)
    flow = {k: v for k, v in d.items() if k != "stages"}
    lines = [yaml.safe_dump({"name": d["name"]}, sort_keys=False).strip()]
    if d["description"]:
        lines.append(yaml.safe_dump({"description": d["description"]}, sort_keys=False, width=1000).strip())
    for k in ("activations", "width_multipliers", "stem"):
        if k in flow:
            lines.append(f"{k}: {_flow(flow[k])}")
    lines.append("stages:")
    lines += [f"  - {_flow(stage)}" for stage in d["stages"]]
    for k in ("head", "exits"):
        if k in flow:
            lines.append(f"{k}: {_flow(flow[k])}")
    return "\n".join(lines) + "\n"


def _flow(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10_000).strip()


def differences(before: dict[str, Any], after: dict[str, Any], key: str = "") -> list[str]:
    """What changed between two spaces' data, as 'key: old -> new' lines (first level that differs)."""
    if isinstance(before, dict) and isinstance(after, dict):
        out = []
        for k in [*before, *(k for k in after if k not in before)]:
            sub = f"{key}.{k}" if key else k
            if k not in after:
                out.append(f"{sub} removed")
            elif k not in before:
                out.append(f"{sub} added")
            else:
                out += differences(before[k], after[k], sub)
        return out
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after) \
            and all(isinstance(b, dict) for b in before + after):
        return [line for i, (b, a) in enumerate(zip(before, after)) for line in differences(b, a, f"{key}[{i}]")]
    return [] if before == after else [f"{key} {_flow(before)} -> {_flow(after)}"]
