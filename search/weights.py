"""Trained weights of trials, kept beside the study: ``<dir>/<study>/trials/<number>/weights.pt``."""
from __future__ import annotations

import os
from pathlib import Path

WEIGHTS = "weights.pt"


def weights_path(directory: str, study: str, number: int) -> Path:
    return Path(directory) / study / "trials" / str(number) / WEIGHTS


def save_weights(directory: str, study: str, number: int, weights: bytes) -> Path:
    """Write atomically, so a crash never leaves half a file that export would load."""
    path = weights_path(directory, study, number)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(weights)
    os.replace(tmp, path)
    return path
