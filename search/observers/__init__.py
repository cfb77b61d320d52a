"""What watches told trials (Optuna's ``callbacks=[...]`` style): the MLflow tracker, the progress
line, the front files beside the study."""
from .base import Observer
from .front_files import FrontFiles
from .progress import Progress
from .tracking import Store, Tracker

__all__ = ["FrontFiles", "Observer", "Progress", "Store", "Tracker"]
