"""Latency measured on a real device, as a table: ``arch,latency_ms``, one row per NAS-Bench-201
cell (the HW-NAS-Bench / BRP-NAS tables in shared/data/nb201-devices, or a user's own). With
``--latency-table FILE.csv`` the file is the device: a trial's ``latency_ms`` is its row."""
from __future__ import annotations

import csv
import functools
import math
import os

from hwnas.spaces.nb201 import EDGES, OPS, CellError, parse_cell

from .data import DataError
from .metrics import DEVICE_TABLE

TABLE_LIMIT = 50_000_000  # bytes: a full table of 15,625 rows is about 1.5 MB


@functools.lru_cache(maxsize=4)
def _read(path: str, stamp: tuple[int, int]) -> dict[str, float]:
    try:
        if os.path.getsize(path) > TABLE_LIMIT:
            raise DataError(f"--latency-table {path} holds more than {TABLE_LIMIT:,} bytes; a table of every "
                            f"NAS-Bench-201 cell is about 1.5 MB")
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except OSError as e:
        raise DataError(f"cannot read --latency-table {path}: {e.strerror or e}") from None
    except (UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"--latency-table {path} is not a CSV text file ({e})") from None
    if not rows or tuple(c.strip() for c in rows[0]) != DEVICE_TABLE:
        raise DataError(f"--latency-table {path} must start with the header {','.join(DEVICE_TABLE)}")
    table: dict[str, float] = {}
    for line, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        try:
            arch, value = row
            cell, latency = str(parse_cell(arch)), float(value)
        except (ValueError, CellError) as e:
            raise DataError(f"--latency-table {path} line {line}: not arch,latency_ms ({str(e)[:200]})") from None
        if not (latency > 0 and math.isfinite(latency)):
            raise DataError(f"--latency-table {path} line {line}: latency_ms must be a positive number, got {value}")
        if cell in table:
            raise DataError(f"--latency-table {path} line {line}: cell {arch} is listed twice")
        table[cell] = latency
    cells = len(OPS) ** len(EDGES)
    if len(table) != cells:
        raise DataError(f"--latency-table {path} holds {len(table):,} cells; the device must time all "
                        f"{cells:,} NAS-Bench-201 cells")
    return table


def device_latencies(path: str) -> dict[str, float]:
    """Cell (canonical arch string) -> latency in ms; DataError naming what is wrong with the file.
    Read once per process and file version."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise DataError(f"cannot read --latency-table {path}: {e.strerror or e}") from None
    return _read(path, (st.st_mtime_ns, st.st_size))
