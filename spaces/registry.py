"""Spaces by name."""
from __future__ import annotations

from .mobile import MobileSpace
from .nb201 import NB201Space

SPACES = {"mobile": MobileSpace, "nb201": NB201Space}


def get_space(name: str, **options):
    if name not in SPACES:
        raise KeyError(f"unknown space {name!r}; available: {', '.join(SPACES)}")
    return SPACES[name](**options)
