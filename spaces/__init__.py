"""Search spaces: the genotype language, its network builder, named networks and the spaces."""
from .builder import Network, build
from .genotype import ACTIVATIONS, KINDS, Exit, Genotype, GenotypeError, Head, Stage, Stem, parse
from .named import NAMED
from .registry import SPACES, get_space

__all__ = ["ACTIVATIONS", "KINDS", "Exit", "Genotype", "GenotypeError", "Head", "NAMED", "Network",
           "SPACES", "Stage", "Stem", "build", "get_space", "parse"]
