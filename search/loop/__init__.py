"""The search loop: ask a trial, have it evaluated, tell the result, tell the observers."""
from .run import run_search

__all__ = ["run_search"]
