"""``search export``: a front member as code the user owns (model.py, weights, metadata, ONNX)."""
from __future__ import annotations

from .request import FILES, PICKS, ExportRequest

__all__ = ["FILES", "PICKS", "ExportRequest", "export"]


def export(request: ExportRequest) -> list[str]:
    """Write the chosen member (``write.export``); imported when an export runs, as it needs torch."""
    from .write import export as write

    return write(request)
