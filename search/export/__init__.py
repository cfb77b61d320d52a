"""``search export``: a front member as code the user owns."""
from .export import FILES, PICKS, ExportRequest, export

__all__ = ["FILES", "PICKS", "ExportRequest", "export"]
