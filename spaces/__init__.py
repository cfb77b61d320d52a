"""Search spaces: the genotype language, its network builder, named networks and the spaces.

Names are imported on first use (PEP 562), as in ``hwnas.evaluators``: naming a space, reading a
genotype or a space file, as argument checks and `search front` do, does not pay for importing
torch (only the builder needs it)."""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_HOMES = {"Network": "builder", "build": "builder", "layout": "builder",
          "ACTIVATIONS": "genotype", "KINDS": "genotype", "Exit": "genotype", "Genotype": "genotype",
          "GenotypeError": "genotype", "Head": "genotype", "Stage": "genotype", "Stem": "genotype",
          "parse": "genotype", "NAMED": "named", "SPACES": "registry", "builtin_file": "registry",
          "get_space": "registry", "is_space_file": "registry", "Architecture": "space", "Evaluated": "space",
          "Space": "space", "SpaceFileError": "spacefile"}
__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)


if TYPE_CHECKING:
    from .builder import Network, build, layout
    from .genotype import ACTIVATIONS, KINDS, Exit, Genotype, GenotypeError, Head, Stage, Stem, parse
    from .named import NAMED
    from .registry import SPACES, builtin_file, get_space, is_space_file
    from .space import Architecture, Evaluated, Space
    from .spacefile import SpaceFileError
