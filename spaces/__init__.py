"""Search spaces: the genotype language, its network builder, named networks and the spaces."""
from .builder import Network, build, layout
from .genotype import ACTIVATIONS, KINDS, Exit, Genotype, GenotypeError, Head, Stage, Stem, parse
from .named import NAMED
from .registry import SPACES, builtin_file, get_space, is_space_file
from .space import Architecture, Evaluated, Space
from .spacefile import SpaceFileError

__all__ = ["ACTIVATIONS", "KINDS", "Architecture", "Evaluated", "Exit", "Genotype", "GenotypeError", "Head", "NAMED",
           "Network", "SPACES", "Space", "SpaceFileError", "Stage", "Stem", "build", "builtin_file", "get_space",
           "is_space_file", "layout", "parse"]
