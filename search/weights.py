"""Trained weights of trials, kept beside the study: ``<dir>/<study>/trials/<number>/weights.pt``."""
from __future__ import annotations

import os
from pathlib import Path

WEIGHTS = "weights.pt"


def weights_path(directory: str, study: str, number: int) -> Path:
    return Path(directory) / study / "trials" / str(number) / WEIGHTS


def save_weights(directory: str, study: str, number: int, weights: bytes) -> Path:
    """Write atomically (through a temporary file, synced), so a crash never leaves half a file
    that export would load; when the write fails (a full disk), nothing is left behind and the
    OSError goes to the caller."""
    path = weights_path(directory, study, number)
    tmp = path.with_suffix(".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(weights)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    return path
