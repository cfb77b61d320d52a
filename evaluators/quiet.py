"""Cooperative quiet phases, so latency is never timed while another trial trains on the same cores.

Evaluation code marks its phases; whoever runs trials side by side installs a ``Quiet`` that
coordinates them (``search.quiet_gate`` does it for Ray workers). Alone in a process nothing is
shared, and the default does nothing.
"""
from __future__ import annotations

import contextlib
from contextlib import AbstractContextManager as ContextManager
from typing import Protocol


class Quiet(Protocol):
    def measuring(self) -> ContextManager:
        """Hold while timing: returns once no other trial on this device is training. May be
        nested in this trial's own training section (its work is not running meanwhile), and in
        another measuring section (then it is part of that one: several timings, one phase)."""

    def training(self) -> ContextManager:
        """Hold while training or evaluating (heavy work that would disturb a timing). Sections
        do not nest."""

    def checkpoint(self) -> None:
        """Called between training steps (and between the pieces of other long work, such as an
        early-exit network's untimed run over the validation split): pauses here while someone
        else is timing. Never inside this trial's own measuring section."""


class Alone:
    """Nothing else runs on this device: no coordination needed."""

    def measuring(self) -> ContextManager:
        return contextlib.nullcontext()

    def training(self) -> ContextManager:
        return contextlib.nullcontext()

    def checkpoint(self) -> None:
        pass


_current: Quiet = Alone()


def install(quiet: Quiet) -> None:
    global _current
    _current = quiet


def measuring() -> ContextManager:
    return _current.measuring()


def training() -> ContextManager:
    return _current.training()


def checkpoint() -> None:
    _current.checkpoint()
