"""Experiments built on the pipeline: the shortcut-bias experiment, the alpha × beta sweep, the
annotators of the agreement study and the comparison of CAM methods and target layers."""
from .annotators import (
    SIMULATED_PREFIX, AgreementParams, as_reference, describe_source, load_annotations, simulate_annotators,
    validate_agreement_params,
)
from .bias import BiasModel, BiasParams, BiasResult, bias_splits, cam_energy, run_bias_experiment, train_bias_models
from .bias import SeedsResult, bias_over_seeds, validate_bias_params
from .cam_methods import DEFAULT_METHODS, CamComparison, CamMethodsParams, compare_cams
from .sweep import METRICS, SweepParams, SweepResult, alpha_beta_sweep, resolve_reference, validate_sweep_params

__all__ = [
    "DEFAULT_METHODS", "CamComparison", "CamMethodsParams", "compare_cams",
    "METRICS", "SIMULATED_PREFIX", "AgreementParams", "BiasModel", "BiasParams", "BiasResult", "SweepParams",
    "SeedsResult", "SweepResult", "alpha_beta_sweep", "bias_over_seeds", "as_reference", "bias_splits", "cam_energy", "describe_source",
    "load_annotations", "resolve_reference", "run_bias_experiment", "simulate_annotators", "train_bias_models",
    "validate_agreement_params", "validate_bias_params", "validate_sweep_params",
]
