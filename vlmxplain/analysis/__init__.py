"""Analysis of a run: judge-vs-human agreement statistics."""

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

__all__ = [
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
