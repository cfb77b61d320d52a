"""Spaces by name, and space files by path: one place that turns ``--space`` into a Space."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from . import spacefile
from .cells import CellSpace
from .nb201 import NB201Space
from .space import Space

BUILTIN = Path(__file__).resolve().parent / "builtin"  # the built-in cell spaces, as space files
FILE_SPACES = ("mobile", "mobile224")


def builtin_file(name: str) -> Path:
    return BUILTIN / f"{name}.yaml"


def _builtin(name: str) -> Callable[[], Space]:
    return lambda: CellSpace(spacefile.load(builtin_file(name)))


SPACES: dict[str, Callable[[], Space]] = {**{n: _builtin(n) for n in FILE_SPACES}, "nb201": NB201Space}


def is_space_file(value: str) -> bool:
    """Whether ``--space`` names a file (a user's own space) rather than a built-in."""
    return value.endswith((".yaml", ".yml"))


_REMEMBERED: dict[str, str] = {}  # path -> a study's copy of a space file no longer there


def remember(path: str, text: str) -> None:
    """A study's copy of its space file, read instead of ``path`` while no file is there (a study
    stays readable and exportable after its file moved)."""
    _REMEMBERED[path] = text


def get_space(name: str, exits: bool = False) -> Space:
    """The built-in space ``name``, or the space file at that path, with early-exit heads among
    its choices when ``exits``. KeyError for an unknown name; SpaceFileError (one line) for a
    file that is not a space."""
    if name in SPACES:
        space = SPACES[name]()
    elif is_space_file(name):
        if name in _REMEMBERED and not Path(name).exists():
            spec = spacefile.loads(_REMEMBERED[name], f"space file {name} (the study's copy)", Path(name).stem)
        else:
            spec = spacefile.load(name)
        space = CellSpace(spec, source=name)
    else:
        raise KeyError(f"unknown space {name!r}; available: {', '.join(SPACES)}, or a space file (.yaml)")
    return space.with_exits() if exits else space
