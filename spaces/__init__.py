"""Search spaces: the genotype language, its network builder, named networks and the spaces."""
from .builder import Network, build, layout
from .genotype import ACTIVATIONS, KINDS, Exit, Genotype, GenotypeError, Head, Stage, Stem, parse
from .named import NAMED
from .registry import SPACES, get_space
from .space import Architecture, Evaluated, Space

__all__ = ["ACTIVATIONS", "KINDS", "Architecture", "Evaluated", "Exit", "Genotype", "GenotypeError", "Head", "NAMED",
           "Network", "SPACES", "Space", "Stage", "Stem", "build", "get_space", "layout", "parse"]
