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
from typing import Any, Callable, ClassVar, Iterator, Literal
from urllib.parse import urlsplit

from pydantic import Field, model_validator

from .core.catalog import InputKind
from .core.checks import Alpha, Beta, MaxCost, PositiveInt, Threshold, looks_secret
from .core.defaults import DEFAULT_ALPHA, DEFAULT_BETA, DEFAULT_CAM, DEFAULT_JUDGE, DEFAULT_THRESHOLD
from .core.fields import CamField, ClassifierField, JudgeField
from .core.params import DirPath, ParamsModel
from .datasets.open import DataField, open_dataset

#: Also here, loaded on first use: ``SweepNotebookParams``, ``AgreementNotebookParams``,
#: ``CamMethodsNotebookParams``, ``resolve_classifier``.
__all__ = ["NOTEBOOK_PARAMS", "PipelineParams", "QuickstartParams", "RunParams", "default_run_dir", "load_data",
           "refuse_secret_parameters"]

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
    limit: PositiveInt | None = Field(None, description="only the first N samples (a warning if they hold few of the classes)")
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
    max_cost: MaxCost | None = Field(None, description="USD: a VLM judge sends no request that would take its "
                                     "spend in run_dir past this (a later run with a larger one asks the rest)")
    order: Literal["shuffled", "dataset"] = Field("shuffled", description="shuffled: a fixed random permutation "
                                                  "(a run stopped early has judged a random sample); dataset: as listed")

    @model_validator(mode="after")
    def _cost_needs_a_billed_judge(self) -> "PipelineParams":
        if self.max_cost is not None and (self.judge.is_offline or self.judge.provider == "openai-compatible"):
            raise ValueError(f"max_cost: judge {self.judge} bills nothing here (max_cost is for openai:, gemini: "
                             "and batch judges; a priced OpenAI-compatible judge takes it in Python)")
        return self


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


@lru_cache(maxsize=None)
def _cam_methods_params() -> type[ParamsModel]:
    from .experiments.cam_methods import DEFAULT_METHODS, QUICK_METRICS, Layers, MetricNames, Methods

    class CamMethodsNotebookParams(ParamsModel):
        """The ``cam_methods`` notebook: several CAM methods (and target layers) on one dataset."""

        notebook: ClassVar[str] = "cam_methods"
        data: DataField = Field("shapes:n=60,seed=5000,shortcut_on=all", description="any data source (see pipeline)")
        classifier: ClassifierField = Field("shortcut:0.75", description="the model whose attention is explained")
        methods: Methods = Field(DEFAULT_METHODS, description="CAM methods to compare")
        layers: Layers = Field(None, description="None: the classifier's target layer; or dotted module names")
        judge: JudgeField = Field("offline:insertion-deletion", description="the judge of every run")
        metrics: MetricNames = Field(QUICK_METRICS, description="faithfulness metrics (vx.evaluate's names; 'all' "
                                     "adds aopc, average_drop, increase_in_confidence, road)")
        alpha: Alpha = Field(DEFAULT_ALPHA, description="sigmoid steepness (paper: 25)")
        beta: Beta = Field(DEFAULT_BETA, description="sigmoid midpoint (paper: 0.6)")
        threshold: Threshold = Field(DEFAULT_THRESHOLD, description="a score at or above it counts as High")
        limit: PositiveInt | None = Field(None, description="only the first N samples (a warning if they hold few of the classes)")
        sanity: bool = Field(False, description="also judge every inverted map (doubles judge requests)")
        n_boot: PositiveInt = Field(1000, description="bootstrap resamples per CI")
        pair: list[str] | None = Field(None, description="two methods for the transition figure (default: the "
                                       "best and the worst by insertion - deletion AUC)")
        run_dir: DirPath | None = Field(None, description="one run per method below it (default: "
                                        "runs/cam_methods/<data>-<classifier>)")
        figures_dir: DirPath = Field("figures", description="figures are written here")

        @property
        def labels(self) -> list[str]:
            """How the comparison names each method/layer."""
            if self.layers is None:
                return list(self.methods)
            return [f"{m}@{layer}" for layer in self.layers for m in self.methods]

        @model_validator(mode="after")
        def _pair_and_run_dir(self) -> "CamMethodsNotebookParams":
            if self.pair is not None and (len(self.pair) != 2 or not set(self.pair) <= set(self.labels)
                                          or self.pair[0] == self.pair[1]):
                raise ValueError(f"pair: two different ones of {', '.join(self.labels)}, got {self.pair!r}")
            if self.run_dir is None:
                object.__setattr__(self, "run_dir", default_run_dir(self.notebook, self.data.label, self.classifier))
            return self

    CamMethodsNotebookParams.__module__ = __name__
    return CamMethodsNotebookParams


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
    "cam_methods": _cam_methods_params,
})


_KEY_LIKE = re.compile(r"^(sk-|sk_|AIza|ghp_|xox[abp]-|hf_)[A-Za-z0-9_\-]{12,}$")
_URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s\"'<>]+")


def refuse_secret_parameters(parameters: Mapping[str, Any]) -> None:
    """Refuse, before anything runs or is written, a notebook parameter that would carry a
    credential into the executed notebook: a key-like name (``api_key``, ``openai_token``,
    known or not), a key-like value, or a URL with user-info, query or fragment. The message
    names the parameter, never its value, and points to environment variables."""
    for name, value in parameters.items():
        if looks_secret(name):
            raise ValueError(f"{name}: keys are never notebook parameters (the executed notebook would keep them); "
                             "set OPENAI_API_KEY, GEMINI_API_KEY or OPENAI_COMPATIBLE_API_KEY in the environment")
        for text in _strings(value):
            if _KEY_LIKE.match(text.strip()):
                raise ValueError(f"{name}: the value looks like an API key; keys belong in the environment "
                                 "(OPENAI_API_KEY, GEMINI_API_KEY, ...), never in a parameter")
            for url in _URL.findall(text):
                parts = urlsplit(url)
                if "@" in parts.netloc or parts.query or parts.fragment or "?" in url or "#" in url:
                    raise ValueError(f"{name}: a URL in it has credentials, a query or a fragment; keys belong in "
                                     "the environment, never in a URL")


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [s for k, v in value.items() for s in _strings(k) + _strings(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _strings(v)]
    return []


def __getattr__(name: str) -> Any:
    """The experiments' notebook models and :func:`resolve_classifier` load torch: on first use."""
    if name == "SweepNotebookParams":
        return _sweep_params()
    if name == "AgreementNotebookParams":
        return _agreement_params()
    if name == "CamMethodsNotebookParams":
        return _cam_methods_params()
    if name == "resolve_classifier":
        from .models.resolve import resolve_classifier

        return resolve_classifier
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
