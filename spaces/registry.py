"""Spaces by name."""
from __future__ import annotations

from .mobile import MobileSpace
from .nb201 import NB201Space
from .space import Space

SPACES: dict[str, type[MobileSpace] | type[NB201Space]] = {"mobile": MobileSpace, "nb201": NB201Space}


def get_space(name: str, exits: bool = False) -> Space:
    """The space ``name``, with early-exit heads among its choices when ``exits``."""
    if name not in SPACES:
        raise KeyError(f"unknown space {name!r}; available: {', '.join(SPACES)}")
    space: Space = SPACES[name]()
    return space.with_exits() if exits else space
