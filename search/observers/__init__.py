"""What watches told trials: the MLflow tracker, the progress line, the front files."""
from .tracking import Store, Tracker

__all__ = ["Store", "Tracker"]
