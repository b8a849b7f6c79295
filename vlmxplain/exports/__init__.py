"""Exports of a run for other tools: the per-sample table as CSV or Parquet, and a folder in
FiftyOne's dataset exchange format (images, the CAM as a heat map, score, quadrant and the judge's
texts as fields) that needs no FiftyOne at export time."""
from .fiftyone_dir import export_fiftyone
from .tables import export_table

__all__ = ["export_fiftyone", "export_table"]
