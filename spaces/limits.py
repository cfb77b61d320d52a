"""Sanity bounds on what an input may make this process allocate: estimated first, refused with
the figure and the limit before anything is allocated. One limit, in memory, that a user with a
real need raises with an environment variable."""
from __future__ import annotations

import os

MEMORY_ENV = "HWNAS_MAX_MEMORY_GB"
DEFAULT_GB = 8.0  # a third of this project's 24 GB machines: room for Ray, MLflow and a second trial


class TooLarge(ValueError):
    """An input whose estimated memory passes the limit."""


def limit_bytes() -> int:
    text = os.environ.get(MEMORY_ENV, "")
    try:
        gb = float(text) if text else DEFAULT_GB
    except ValueError:
        raise TooLarge(f"${MEMORY_ENV} must be a number of GB, got {text[:40]!r}") from None
    return int(gb * 1e9)


def check_memory(needed: int, what: str) -> None:
    """Raise TooLarge when ``needed`` bytes pass the limit, naming ``what`` and both figures."""
    limit = limit_bytes()
    if needed > limit:
        raise TooLarge(f"{what} needs about {needed / 1e9:,.1f} GB, over the limit of {limit / 1e9:g} GB "
                       f"(set {MEMORY_ENV} to raise it)")
