"""vlmxplain: explain image classifiers with CAMs, masked CAM images and vision-language judges.

Follows "A Novel Framework for Automated Explain Vision Model Using Vision-Language Models"
(arXiv 2508.20227). The package root is lazy: ``import vlmxplain`` loads no torch, SDK,
ipywidgets or matplotlib; each name below imports its module on first use.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Public name → the module that defines it.
_EXPORTS: dict[str, str] = {
    # core
    "ClassifierSpec": "core.specs", "DataSpec": "core.specs", "JudgeSpec": "core.specs",
    "Judgment": "core.records", "RunConfig": "core.records", "RunView": "core.records",
    "QuadrantSummary": "core.quadrants", "quadrant_summary": "core.quadrants",
    # models, data
    "Classifier": "models.classifiers", "load_classifier": "models.classifiers",
    "resolve_classifier": "models.resolve", "open_dataset": "datasets.open",
    # CAMs and masks
    "CAM_METHODS": "cams.methods", "get_cam_method": "cams.methods", "CamResult": "cams.extract",
    "compute_cams": "cams.extract",
    "JudgeInput": "masks.judge_input", "masked_image": "masks.saliency", "overlay": "masks.saliency",
    "saliency": "masks.saliency", "sigmoid_mask": "masks.saliency", "thumbnail": "masks.images",
    # judges
    "Judge": "judges.base", "make_judge": "judges.registry", "check_judge": "judges.registry",
    "estimate_cost": "judges.vlm.cost",
    # store, pipeline, metrics
    "JudgmentCache": "store.cache", "RunStore": "store.run_store", "Run": "store.run", "open_run": "store.run",
    "merge_runs": "store.merge", "explain_on_dask": "pipeline.distributed",
    "explain_on_ray": "pipeline.distributed",
    "ExplainSummary": "pipeline.explain", "explain": "pipeline.explain", "rejudge": "pipeline.rejudge",
    "sync": "pipeline.sync",
    "agreement": "metrics.reference", "evaluate": "metrics.evaluate",
    "compare_cams": "experiments.cam_methods", "CamComparison": "experiments.cam_methods",
    "validate_judge": "metrics.validation", "sanity_check": "metrics.sanity", "mislabel_report": "metrics.mislabel",
    "reliability": "metrics.reliability",
    # figures and panels
    "plot_quadrant_matrix": "viz.figures", "plot_score_histogram": "viz.figures", "plot_quadrant_gallery": "viz.figures",
    "save_figure": "viz.figures", "plot_per_class_matrix": "viz.figures", "plot_bias_curve": "viz.bias", "plot_flagged_gallery": "viz.bias",
    "plot_sweep_heatmap": "viz.sweep", "plot_mask_grid": "viz.sweep", "plot_agreement": "viz.agreement",
    "plot_reliability": "viz.reliability",
    "plot_cam_metrics": "viz.cam_methods", "plot_quadrant_shares": "viz.cam_methods",
    "plot_cam_transitions": "viz.cam_methods",
    "plot_transition_matrix": "viz.compare", "plot_score_scatter": "viz.compare",
    "Annotator": "widgets.annotator", "JudgeViewer": "widgets.judge_viewer", "MaskTuner": "widgets.mask_tuner",
    "QuadrantBrowser": "widgets.quadrant_browser",
    # reports
    "report": "reports.html_report", "compare": "reports.compare", "Comparison": "reports.compare",
    "export_table": "exports.tables", "export_fiftyone": "exports.fiftyone_dir",
}
_SUBPACKAGES = ("cams", "core", "datasets", "experiments", "judges", "masks", "metrics", "models", "params",
                "pipeline", "reports", "exports", "store", "viz", "widgets")

__all__ = sorted([*_EXPORTS, *_SUBPACKAGES])


def __getattr__(name: str) -> Any:  # PEP 562: import on first use
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    elif name in _SUBPACKAGES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module 'vlmxplain' has no attribute {name!r}")
    globals()[name] = value
    return value


def _lazy(module: str, name: str) -> Any:
    """A function that imports ``module`` on its first call and calls its ``name``."""

    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(f".{module}", __name__), name)(*args, **kwargs)

    call.__name__ = call.__qualname__ = name
    return call


# The root wires views onto core's read models (``run.quadrants().plot()``) without core importing
# viz: viz is imported on the first call only.
from .core.views import register_view as _register_view  # noqa: E402

_register_view("quadrant_matrix", _lazy("viz.figures", "plot_quadrant_matrix"))
_register_view("transition_matrix", _lazy("viz.compare", "plot_transition_matrix"))  # Comparison.plot_transitions()
_register_view("score_scatter", _lazy("viz.compare", "plot_score_scatter"))  # Comparison.plot_scores()


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from . import datasets  # noqa: F401
    from .cams.extract import CamResult, compute_cams  # noqa: F401
    from .pipeline.explain import explain  # noqa: F401
    from .store.run import Run, open_run  # noqa: F401
