"""Analysis of a run: the quadrant matrix and judge-vs-human agreement statistics."""

from .agreement import (
    SCORE_RANGE,
    AcceptanceRate,
    InterAnnotatorAgreement,
    PairedComparison,
    TooFewPairsError,
    acceptance_rate,
    agreement_table,
    correlations,
    inter_annotator_agreement,
    krippendorff_alpha,
    load_annotations_csv,
    paired_comparison,
    plot_agreement,
)
from .quadrants import QUADRANTS, QuadrantSummary, assign_quadrants, quadrant_summary, validate_threshold

__all__ = [
    "QUADRANTS",
    "QuadrantSummary",
    "assign_quadrants",
    "quadrant_summary",
    "validate_threshold",
    "SCORE_RANGE",
    "AcceptanceRate",
    "InterAnnotatorAgreement",
    "PairedComparison",
    "TooFewPairsError",
    "acceptance_rate",
    "agreement_table",
    "correlations",
    "inter_annotator_agreement",
    "krippendorff_alpha",
    "load_annotations_csv",
    "paired_comparison",
    "plot_agreement",
]
