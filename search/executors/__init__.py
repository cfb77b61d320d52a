"""Where trials are evaluated: in this process or on Ray, behind one protocol."""
from .base import LocalExecutor, Outcome, make_executor, run_one

__all__ = ["LocalExecutor", "Outcome", "make_executor", "run_one"]
