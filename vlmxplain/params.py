"""Parameters of the bundled notebooks and the CLI: one pydantic model per notebook.

Each notebook validates its parameters in its first code cell with its model
(``PipelineParams.from_namespace(globals())``), so a bad value fails before any work with a
message naming the parameter; the notebooks' ``parameters`` cells are written from these
models' defaults (``tools/notebooks.py``), and :data:`NOTEBOOK_PARAMS` lets the CLI check
values before a kernel starts.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, Callable, ClassVar, Iterator

from pydantic import Field, model_validator

from .core.catalog import InputKind
from .core.checks import Alpha, Beta, PositiveInt, Threshold
from .core.defaults import DEFAULT_ALPHA, DEFAULT_BETA, DEFAULT_CAM, DEFAULT_JUDGE, DEFAULT_THRESHOLD
from .core.fields import CamField, ClassifierField, JudgeField
from .core.params import DirPath, ParamsModel
from .datasets.open import DataField, open_dataset

#: Also here, loaded on first use: ``SweepNotebookParams``, ``AgreementNotebookParams``, ``resolve_classifier``.
__all__ = ["NOTEBOOK_PARAMS", "PipelineParams", "QuickstartParams", "RunParams", "default_run_dir", "load_data"]

load_data = open_dataset


def default_run_dir(notebook: str, *parts: object) -> str:
    """``runs/<notebook>/<parts as a slug>``: one run directory per data, classifier and CAM, so two
    runs on different data never meet in one run store."""
    slug = "-".join(filter(None, (re.sub(r"[^a-z0-9.+]+", "-", str(p).lower()).strip("-.") for p in parts)))
    return f"runs/{notebook}/{slug or 'run'}"


class RunParams(ParamsModel):
    """What every notebook that runs :func:`~vlmxplain.explain` takes."""

    #: The notebook's name: default run directories are ``runs/<notebook>/...``.
    notebook: ClassVar[str] = "pipeline"

    data: DataField = Field("gallery", description="gallery, shapes (options: see README), a class-folder path, or a CSV list")
    classifier: ClassifierField = Field("auto", description="auto, efficientnet_lite0, shortcut:RATE, a timm name, "
                                        "or a ShapesNet checkpoint (.pt)")
    cam: CamField = Field(DEFAULT_CAM, description="gradcam, gradcam++, xgradcam, hirescam, layercam, eigencam, "
                          "scorecam, ablationcam")
    alpha: Alpha = Field(DEFAULT_ALPHA, description="sigmoid steepness (paper: 25)")
    beta: Beta = Field(DEFAULT_BETA, description="sigmoid midpoint on the normalised CAM (paper: 0.4-0.7, best 0.6)")
    judge: JudgeField = Field(DEFAULT_JUDGE, description="offline:faithfulness, offline:groundtruth, "
                              "openai:MODEL, gemini:MODEL, openai-compatible:MODEL@URL")
    threshold: Threshold = Field(DEFAULT_THRESHOLD, description="a score at or above it counts as High")
    limit: PositiveInt | None = Field(None, description="only the first N samples")
    run_dir: DirPath | None = Field(None, description="the resumable run store (default: "
                                    "runs/<notebook>/<data>-<classifier>-<cam>)")
    figures_dir: DirPath = Field("figures", description="figures are written here")

    @model_validator(mode="after")
    def _default_run_dir(self) -> "RunParams":
        if self.run_dir is None and self.data is not None:
            object.__setattr__(self, "run_dir", default_run_dir(self.notebook, self.data.label, self.classifier,
                                                                self.cam))
        return self

    def judge_options(self) -> dict:
        """Options for the judge: what a VLM judge is shown (offline judges take none)."""
        kind = getattr(self, "input_kind", None)
        return {} if self.judge.is_offline or kind is None else {"input_kind": kind}


class PipelineParams(RunParams):
    """The ``pipeline`` notebook: data → classifier → CAM → judge → quadrant matrix and figures."""

    input_kind: InputKind = Field("masked", description="what a VLM judge is shown: masked, overlay or both")


class QuickstartParams(RunParams):
    """The ``quickstart`` notebook."""

    notebook: ClassVar[str] = "quickstart"


@lru_cache(maxsize=None)
def _sweep_params() -> type[ParamsModel]:
    from .experiments.sweep import SweepParams

    class SweepNotebookParams(SweepParams, RunParams):
        """The ``sweep`` notebook: a run, then the alpha × beta grid against a reference."""

        notebook: ClassVar[str] = "sweep"
        data: DataField = Field("shapes:n=60,seed=5000,shortcut_on=all", description="any data source (see pipeline)")
        classifier: ClassifierField = Field("shortcut:0.75", description="shortcut:RATE is the bias experiment's "
                                            "model, or auto, or a model name")
        judge: JudgeField = Field("offline:groundtruth", description="the judge being tuned")

    SweepNotebookParams.__module__ = __name__
    return SweepNotebookParams


@lru_cache(maxsize=None)
def _agreement_params() -> type[ParamsModel]:
    from .experiments.annotators import AgreementParams

    class AgreementNotebookParams(AgreementParams, RunParams):
        """The ``agreement`` notebook: a judge against (human or simulated) annotators. ``data=None``
        analyses the run already in ``run_dir``."""

        notebook: ClassVar[str] = "agreement"
        data: DataField | None = Field("shapes:n=60,seed=5000,shortcut_on=all",
                                       description="None analyses the run already in run_dir")
        classifier: ClassifierField = Field("shortcut:0.75", description="the model whose attention is judged")
        judge: JudgeField = Field(DEFAULT_JUDGE, description="the judge under test")

        @model_validator(mode="after")
        def _existing_run(self) -> "AgreementNotebookParams":
            if self.data is None:
                if self.run_dir is None:
                    raise ValueError("run_dir: with data=None, give the run directory to analyse")
                from .store import open_run

                try:
                    open_run(self.run_dir)  # fails now, naming run_dir, when there is no run there
                except FileNotFoundError as err:
                    raise ValueError(str(err)) from None
            return self

    AgreementNotebookParams.__module__ = __name__
    return AgreementNotebookParams


def _bias_params() -> type[ParamsModel]:
    from .experiments.bias import BiasParams

    return BiasParams


class _NotebookParams(Mapping):
    """Notebook name → parameter model. The experiments' models are imported on first use, so
    checking ``pipeline`` or ``quickstart`` parameters loads no torch (the CLI does it in well
    under a second)."""

    def __init__(self, loaders: dict[str, Callable[[], type[ParamsModel]]]) -> None:
        self._loaders = loaders

    def __getitem__(self, name: str) -> type[ParamsModel]:
        return self._loaders[name]()

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaders)

    def __len__(self) -> int:
        return len(self._loaders)


#: Each bundled notebook's parameter model.
NOTEBOOK_PARAMS: Mapping[str, type[ParamsModel]] = _NotebookParams({
    "pipeline": lambda: PipelineParams, "quickstart": lambda: QuickstartParams, "shortcut_bias": _bias_params,
    "sweep": _sweep_params, "agreement": _agreement_params,
})


def __getattr__(name: str) -> Any:
    """The experiments' notebook models and :func:`resolve_classifier` load torch: on first use."""
    if name == "SweepNotebookParams":
        return _sweep_params()
    if name == "AgreementNotebookParams":
        return _agreement_params()
    if name == "resolve_classifier":
        from .models.resolve import resolve_classifier

        return resolve_classifier
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
