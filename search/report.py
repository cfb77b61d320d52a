"""Rows of results as a table, JSON or CSV."""
from __future__ import annotations

import csv
import io
import json
from typing import Any

from hwnas.evaluators.metrics import REGISTRY

FORMATS = ("table", "json", "csv")


def _cell(key: str, value: Any) -> str:
    """A metric as the registry shows it; anything else plainly (floats to 4 places)."""
    if key in REGISTRY:
        return REGISTRY[key].show(value)
    if isinstance(value, list):
        return "/".join(_cell("", v) for v in value)
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def table(rows: list[dict]) -> str:
    if not rows:
        return "(no rows)"
    keys = list(dict.fromkeys(k for r in rows for k in r))
    cells = [[_cell(k, r[k]) if k in r else "" for k in keys] for r in rows]
    widths = [max(len(k), *(len(c[i]) for c in cells)) for i, k in enumerate(keys)]
    # The last column (genotype text) is long: leave it unpadded.
    line = lambda vals: "  ".join(v.ljust(w) if i < len(keys) - 1 else v
                                  for i, (v, w) in enumerate(zip(vals, widths)))
    return "\n".join([line(keys), line(["-" * w for w in widths])] + [line(c) for c in cells])


def render(rows: list[dict], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(rows, indent=2)
    if fmt == "csv":
        out = io.StringIO()
        keys = list(dict.fromkeys(k for r in rows for k in r))
        writer = csv.DictWriter(out, keys, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return out.getvalue().rstrip("\n")
    return table(rows)
