"""``search export``: a front member as code the user owns (model.py, weights, metadata, ONNX)."""
from __future__ import annotations

from .request import FILES, PICKS, ExportRequest

__all__ = ["FILES", "PICKS", "ExportRequest", "export"]


def export(request: ExportRequest) -> list[str]:
    """Write the chosen member (``write.export``; imported once the study is read, as it needs
    torch: a study that is not there is refused at once)."""
    from ..study import load_study

    study = load_study(request.dir, request.study)
    from .write import export as write

    return write(request, study)
