"""Measurements over a run: judge-vs-human agreement statistics and reference scores."""
from .agreement import (
    AcceptanceRate, InterAnnotatorAgreement, PairedComparison, TooFewPairsError, acceptance_rate, agreement_table,
    correlations, inter_annotator_agreement, krippendorff_alpha, load_annotations_csv, paired_comparison,
)
from .reference import agreement, groundtruth_reference, view_scores

__all__ = [
    "AcceptanceRate", "InterAnnotatorAgreement", "PairedComparison", "TooFewPairsError", "acceptance_rate",
    "agreement", "agreement_table", "correlations", "groundtruth_reference", "inter_annotator_agreement",
    "krippendorff_alpha", "load_annotations_csv", "paired_comparison", "view_scores",
]
