"""Measurements over a run: faithfulness and localisation metrics, judge-vs-human agreement
statistics, judge reliability and reference scores."""
from .agreement import (AcceptanceRate, PairedComparison, TooFewPairsError, acceptance_rate, agreement_table,
                        correlations, paired_comparison)
from .annotations import (InterAnnotatorAgreement, inter_annotator_agreement, krippendorff_alpha, load_annotations_csv,
                          weighted_kappa)
from .evaluate import evaluate, run_classifier
from .faithfulness import DEFAULT_METRICS, METRICS, faithfulness, localisation, pointing_game, road_scores
from .mislabel import MislabelReport, mislabel_report
from .sanity import CONTROLS, SanityCheck, randomised_classifier, sanity_check
from .validation import JudgeValidation, validate_judge
from .reference import agreement, groundtruth_reference, view_scores
from .reliability import Reliability, alpha_ci, reliability

__all__ = [
    "DEFAULT_METRICS", "METRICS", "evaluate", "faithfulness", "localisation", "pointing_game", "road_scores",
    "run_classifier", "CONTROLS", "SanityCheck", "randomised_classifier", "sanity_check", "JudgeValidation",
    "validate_judge", "MislabelReport", "mislabel_report", "Reliability", "alpha_ci", "reliability",
    "AcceptanceRate", "InterAnnotatorAgreement", "PairedComparison", "TooFewPairsError", "acceptance_rate",
    "agreement", "agreement_table", "correlations", "groundtruth_reference", "inter_annotator_agreement",
    "krippendorff_alpha", "load_annotations_csv", "paired_comparison", "view_scores", "weighted_kappa",
]
