"""What a search space is, declared: the protocol every space implements."""
from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any, Protocol, Union

if TYPE_CHECKING:
    from .genotype import Genotype
    from .nb201 import Cell

Architecture = Union["Genotype", "Cell"]  # what a space's choices decode to; str() is its text form


class Evaluated(enum.Enum):
    """How a space's candidates are evaluated."""
    TRAINED = "trained"  # built from the genotype and trained on a data set
    TABLE = "table"  # looked up in a published table (no training)


class Suggests(Protocol):
    """The part of an Optuna trial a space asks its choices of."""

    def suggest_categorical(self, name: str, choices: Any) -> Any: ...


class Space(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def evaluated(self) -> Evaluated: ...

    @property
    def supports_exits(self) -> bool:
        """Whether ``with_exits()`` adds early-exit heads to its choices."""

    @property
    def description(self) -> str: ...

    @property
    def text(self) -> str | None:
        """The space as a space file (canonical YAML), or None for a space that is not a file
        (a table): what a study remembers of it and `search spaces --show` prints."""

    def choices(self) -> dict[str, tuple[Any, ...]]:
        """Parameter name -> options: the same names on every ask, so model-based samplers see one
        space."""

    def sample(self, trial: Suggests, input_shape: tuple[int, int, int] | None) -> Architecture:
        """Ask ``trial`` for every choice and decode them."""

    def decode(self, params: dict[str, Any], input_shape: tuple[int, int, int] | None) -> Architecture: ...

    def canonical(self, architecture: Any) -> Architecture:
        """The member of the architecture's class of equal networks that stands for it."""

    def features(self, params: dict[str, Any]) -> list[float]:
        """What a surrogate model reads of a candidate."""

    def cost_features(self, architecture: Any) -> list[float]:
        """What a network's latency adds up from, for a linear latency model fitted on the ones
        measured so far (``--predict-latency``): counts of the kinds of layer it runs."""

    def with_exits(self) -> Space:
        """This space with early-exit heads among its choices (only when ``supports_exits``)."""

    def input_problem(self, input_shape: tuple[int, int, int]) -> str | None:
        """Why this space's networks cannot take inputs of ``input_shape``, or None."""
