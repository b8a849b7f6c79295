"""Parameters of the bundled notebooks and the CLI: one pydantic model per notebook.

Each notebook validates its parameters in its first code cell with its model
(``PipelineParams.from_namespace(globals())``), so a bad value fails before any work with a
message naming the parameter; the notebooks' ``parameters`` cells are written from these
models' defaults (``tools/notebooks.py``), and :data:`NOTEBOOK_PARAMS` lets the CLI check
values before a kernel starts.
"""
from __future__ import annotations

from pydantic import model_validator

from .cams.methods import CamField
from .core.checks import Alpha, Beta, PositiveInt, Threshold
from .core.defaults import DEFAULT_ALPHA, DEFAULT_BETA, DEFAULT_CAM, DEFAULT_JUDGE, DEFAULT_THRESHOLD
from .core.params import DirPath, ParamsModel
from .datasets.open import DataField, open_dataset
from .experiments.annotators import AgreementParams
from .experiments.bias import BiasParams
from .experiments.sweep import SweepParams
from .judges.registry import JudgeField
from .masks.judge_input import InputKind
from .models.resolve import ClassifierField, resolve_classifier

__all__ = ["AgreementNotebookParams", "NOTEBOOK_PARAMS", "PipelineParams", "QuickstartParams", "RunParams",
           "SweepNotebookParams", "load_data", "resolve_classifier"]

load_data = open_dataset


class RunParams(ParamsModel):
    """What every notebook that runs :func:`~vlmxplain.explain` takes."""

    data: DataField = "gallery"
    classifier: ClassifierField = "auto"
    cam: CamField = DEFAULT_CAM
    alpha: Alpha = DEFAULT_ALPHA
    beta: Beta = DEFAULT_BETA
    judge: JudgeField = DEFAULT_JUDGE
    threshold: Threshold = DEFAULT_THRESHOLD
    limit: PositiveInt | None = None
    run_dir: DirPath = "runs/pipeline"
    figures_dir: DirPath = "figures"


class PipelineParams(RunParams):
    """The ``pipeline`` notebook: data → classifier → CAM → judge → quadrant matrix and figures."""

    input_kind: InputKind = "masked"


class QuickstartParams(RunParams):
    """The ``quickstart`` notebook."""

    run_dir: DirPath = "runs/quickstart"


class SweepNotebookParams(RunParams, SweepParams):
    """The ``sweep`` notebook: a run, then the alpha × beta grid against a reference."""

    data: DataField = "shapes:n=60,seed=5000,shortcut_on=all"
    classifier: ClassifierField = "shortcut:0.75"
    judge: JudgeField = "offline:groundtruth"
    run_dir: DirPath = "runs/sweep"


class AgreementNotebookParams(RunParams, AgreementParams):
    """The ``agreement`` notebook: a judge against (human or simulated) annotators. ``data=None``
    analyses the run already in ``run_dir``."""

    data: DataField | None = "shapes:n=60,seed=5000,shortcut_on=all"
    classifier: ClassifierField = "shortcut:0.75"
    run_dir: DirPath = "runs/agreement"

    @model_validator(mode="after")
    def _existing_run(self) -> "AgreementNotebookParams":
        if self.data is None:
            from .store import open_run

            try:
                open_run(self.run_dir)  # fails now, naming run_dir, when there is no run there
            except FileNotFoundError as err:
                raise ValueError(str(err)) from None
        return self


#: Each bundled notebook's parameter model.
NOTEBOOK_PARAMS: dict[str, type[ParamsModel]] = {
    "pipeline": PipelineParams, "quickstart": QuickstartParams, "shortcut_bias": BiasParams,
    "sweep": SweepNotebookParams, "agreement": AgreementNotebookParams,
}

