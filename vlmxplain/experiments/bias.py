"""The shortcut ("red dot") bias experiment, reproducible offline.

One small CNN (:class:`~vlmxplain.training.ShapesNet`) is trained per *shortcut rate*: a red
dot is planted (top-left) on that share of the training images of one class. A *control* is
trained with the dot on every class equally often (``shortcut_on="all"``), so the dot is there
but carries no label information. Every model is then evaluated on three test splits made of
the same objects (paired by seed):

- ``clean``: no dot anywhere (a shortcut model loses the shortcut class);
- ``dotted``: the dot moved onto *every* class, at its training place: it no longer says
  anything about the label, so a model that learned it calls everything the shortcut class;
- ``moved``: the dot on every class at another place (``moved_position``): does the model
  follow the dot wherever it is? (ShapesNet's corner dot turns out to be place-specific.)

The pipeline (:func:`~vlmxplain.pipeline.explain`) explains each model on one split
(``explain_split``, default ``dotted``) and a judge scores the attention (offline default:
``offline:groundtruth``, the share of the visible region on the object). Per model the report
gives accuracies, the *flagged* share (judged samples scored below the threshold: Correct-Low +
Wrong-Low) and how much of it is plain wrong predictions (``wrong_share_of_flagged``), the
Correct-Low share (right for the wrong reason) overall and *among correct predictions*
(``rfwr_share_of_correct``: the honest measure of the claim — a flagged share that mostly counts
wrong predictions says little about attention), accuracy on the dotted and the moved-dot split
separately, and the share of CAM energy on
the dot box and on the object (from the raw CAM upsampled to the image, :func:`energy_in_box` /
:func:`energy_on_mask`). The paper's claim
is checked by the correlation between shortcut rate and flagged share (target: |r| > 0.5);
:func:`bias_over_seeds` repeats the experiment over seeds (new models, new test objects) and gives
a t-interval on each r.
Figures: :mod:`vlmxplain.viz.bias`.

Models are trained once and cached on disk (:func:`vlmxplain.models.shapes_model`).
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BeforeValidator, Field, StrictBool, field_validator, model_validator
from scipy import stats

from ..cams.methods import CamField
from ..core.checks import Alpha, Beta, NonNegativeInt, Threshold
from ..core.defaults import DEFAULT_ALPHA, DEFAULT_BETA, DEFAULT_CAM, DEFAULT_THRESHOLD
from ..core.params import DirPath, ParamsModel
from ..core.specs import SHORTCUT_CLASSES
from ..datasets import SHAPE_NAMES, shapes
from ..judges.registry import JudgeField
from ..masks.regions import energy_in_box, energy_on_mask
from ..masks.saliency import saliency as upsample_saliency
from ..models.shapesnet import DEFAULT_EPOCHS, TRAIN_SIZE, accuracy, shapes_model, training_spec
from ..pipeline import explain

__all__ = [
    "BiasModel", "BiasParams", "BiasResult", "DEFAULT_RATES", "SeedsResult", "bias_over_seeds", "bias_splits",
    "cam_energy", "run_bias_experiment",
    "train_bias_models", "validate_bias_params",
]

DEFAULT_RATES = (0.0, 0.75, 1.0)  # fast default; the paper-style curve adds 0.25 and 0.5
DEFAULT_CLASSES = SHORTCUT_CLASSES
CONTROL = "control"
SPLITS = ("dotted", "moved", "clean")


# ----------------------------------------------------------------------------- CAM energy
def cam_energy(run, dataset) -> pd.DataFrame:
    """Per sample of ``dataset`` explained in ``run``: CAM energy on the shortcut box and on the
    object, and whether the CAM's peak lies in the box (grown by one CAM cell, since the peak
    of an upsampled low-res map is only known to a cell)."""
    rows = []
    for sample in dataset:
        cam = run.store.get_cam(sample.id)
        if cam is None:
            continue
        v = upsample_saliency(cam["map"], sample.image.size)
        box = sample.meta.get("shortcut_box")
        cell = int(math.ceil(sample.image.size[0] / cam["map"].shape[1]))
        row = {"id": sample.id, "has_shortcut": box is not None,
               "energy_on_object": energy_on_mask(v, sample.mask) if sample.mask is not None else np.nan,
               "energy_on_shortcut": np.nan, "peak_on_shortcut": np.nan}
        if box is not None:
            py, px = np.unravel_index(int(np.argmax(v)), v.shape)
            x0, y0, x1, y1 = box
            row["energy_on_shortcut"] = energy_in_box(v, box)
            row["peak_on_shortcut"] = bool(x0 - cell <= px < x1 + cell and y0 - cell <= py < y1 + cell)
        rows.append(row)
    return pd.DataFrame(rows, columns=["id", "has_shortcut", "energy_on_object", "energy_on_shortcut",
                                       "peak_on_shortcut"])


# ----------------------------------------------------------------------------- parameters
Position = Literal["top-right", "bottom-left", "bottom-right", "random-corner", "random"]


def _rates(value: Any) -> tuple[float, ...]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [value]
    try:
        rates = tuple(float(r) for r in value if not isinstance(r, bool))
        if len(rates) != len(value):
            raise TypeError
    except TypeError:
        raise ValueError(f"rates: give a list of shortcut rates in [0, 1], got {value!r}") from None
    if not rates or any(not 0.0 <= r <= 1.0 for r in rates) or len(set(rates)) != len(rates):
        raise ValueError(f"rates: give distinct shortcut rates in [0, 1], got {value!r}")
    return tuple(sorted(rates))


class BiasParams(ParamsModel):
    """Parameters of the shortcut-bias experiment (validated; errors name the parameter)."""

    rates: Annotated[tuple[float, ...], BeforeValidator(_rates)] = Field(
        DEFAULT_RATES, description="shortcut rates, one model each (paper-style curve: 0, 0.25, 0.5, 0.75, 1)")
    control: StrictBool = Field(True, description="also train the control model (the dot on every class)")
    shortcut_class: str = Field("circle", description="the class that carries the dot")
    classes: tuple[str, ...] = DEFAULT_CLASSES
    n_train: Annotated[int, Field(ge=30, strict=True)] = Field(TRAIN_SIZE, description="training images per model")
    epochs: Annotated[int, Field(ge=1, strict=True)] = DEFAULT_EPOCHS
    n_test: Annotated[int, Field(ge=3, strict=True)] = Field(60, description="images per test split")
    explain_split: Literal["dotted", "moved", "clean"] = Field("dotted", description="dotted, moved or clean")
    moved_position: Position = Field("bottom-right", description="where the moved split's dot sits")
    seed: NonNegativeInt = 0
    cam: CamField = DEFAULT_CAM
    judge: JudgeField = "offline:groundtruth"
    alpha: Alpha = DEFAULT_ALPHA
    beta: Beta = DEFAULT_BETA
    threshold: Threshold = DEFAULT_THRESHOLD
    run_dir: DirPath = "runs/shortcut_bias"
    figures_dir: DirPath = "figures"

    @field_validator("classes")
    @classmethod
    def _classes(cls, classes: tuple[str, ...]) -> tuple[str, ...]:
        if len(classes) < 2 or any(c not in SHAPE_NAMES for c in classes) or len(set(classes)) != len(classes):
            raise ValueError(f"classes: give 2+ distinct names from {SHAPE_NAMES}, got {list(classes)!r}")
        return classes

    @model_validator(mode="after")
    def _shortcut_class(self) -> "BiasParams":
        if self.shortcut_class not in self.classes:
            raise ValueError(f"shortcut_class: must be one of {self.classes}, got {self.shortcut_class!r}")
        return self


def validate_bias_params(**params: Any) -> BiasParams:
    """Check every parameter of the experiment; ``ValueError`` names the first bad one."""
    return BiasParams.check(**params)


# ----------------------------------------------------------------------------- models and splits
@dataclass
class BiasModel:
    """One trained model of the experiment: ``kind`` is "shortcut" or "control"."""

    name: str
    kind: str
    rate: float
    classifier: Any
    train_spec: dict = field(default_factory=dict)


def train_bias_models(p: BiasParams, progress: bool = False) -> list[BiasModel]:
    """Train (or load from the model cache) one model per rate, plus the control (the dot on
    every class half the time: present, but it says nothing about the label)."""
    data = {"classes": list(p.classes), "seed": p.seed}
    specs = [(f"rate-{r:g}", "shortcut", r, training_spec(data, rate=r, shortcut_class=p.shortcut_class,
                                                          n_train=p.n_train)) for r in p.rates]
    if p.control:
        specs.append((CONTROL, "control", 0.5, training_spec(data, rate=0.5, shortcut_on="all", n_train=p.n_train)))
    return [BiasModel(name, kind, rate, shapes_model(spec, epochs=p.epochs, progress=progress), spec)
            for name, kind, rate, spec in specs]


def bias_splits(p: BiasParams) -> dict[str, Any]:
    """The paired test splits (same objects): ``clean`` (no dot), ``dotted`` (the dot on every
    class at its training place) and ``moved`` (the dot on every class at ``moved_position``)."""
    kw = {"n": p.n_test, "classes": p.classes, "seed": 5000 + p.seed}  # never a training seed (1000 + seed)
    return {"clean": shapes(**kw),
            "dotted": shapes(**kw, shortcut_on="all", shortcut_rate=1.0, shortcut_position="top-left"),
            "moved": shapes(**kw, shortcut_on="all", shortcut_rate=1.0, shortcut_position=p.moved_position)}


# ----------------------------------------------------------------------------- the experiment
@dataclass
class BiasResult:
    """Per-model summary (``table``), per-sample details (``samples``), runs and correlations."""

    params: BiasParams
    table: pd.DataFrame
    samples: pd.DataFrame
    runs: dict[str, Any]
    correlation: pd.DataFrame

    @property
    def r(self) -> float:
        """Pearson r between shortcut rate and flagged share (the paper's claim: |r| > 0.5)."""
        return float(self.correlation.loc["flagged_share", "pearson_r"])

    @property
    def control_accuracy(self) -> float | None:
        ctl = self.table[self.table["kind"] == "control"]
        return None if ctl.empty else float(ctl["accuracy_clean"].iloc[0])


def _rate_correlations(table: pd.DataFrame) -> pd.DataFrame:
    """Pearson and Spearman between shortcut rate and each outcome, over the shortcut models."""
    sc = table[table["kind"] == "shortcut"]
    rows = []
    for col in ("flagged_share", "correct_low_share", "rfwr_share_of_correct", "energy_on_shortcut", "peak_on_shortcut",
                "predicted_shortcut_class", "accuracy_clean", "accuracy_dotted", "accuracy_moved"):
        x, y = sc["rate"].to_numpy(float), sc[col].to_numpy(float)
        ok = np.isfinite(y)
        x, y = x[ok], y[ok]
        row = {"outcome": col, "n_models": len(x), "pearson_r": np.nan, "pearson_p": np.nan, "spearman_rho": np.nan,
               "note": ""}
        if len(x) < 3:
            row["note"] = f"need 3+ shortcut rates, have {len(x)}"
        elif np.ptp(x) == 0 or np.ptp(y) == 0:
            row["note"] = "constant values: correlation undefined"
        else:
            pr = stats.pearsonr(x, y)
            row.update(pearson_r=float(pr.statistic), pearson_p=float(pr.pvalue),
                       spearman_rho=float(stats.spearmanr(x, y).statistic))
        rows.append(row)
    return pd.DataFrame(rows).set_index("outcome")


def _share(quadrant: pd.Series, part: str, whole: list[str]) -> float:
    """Share of ``part`` among the rows in ``whole`` (NaN when there are none)."""
    base = quadrant.isin(whole)
    return float((quadrant[base] == part).mean()) if base.any() else np.nan


def _run_subdir(p: BiasParams, model: BiasModel, split) -> Path:
    """One run directory per (model weights, split, CAM method): resumable, never mixed up."""
    key = hashlib.sha256(f"{model.classifier.fingerprint}|{split.name}|{p.cam}".encode()).hexdigest()[:8]
    return Path(p.run_dir) / f"{model.name}-{key}"


def run_bias_experiment(p: BiasParams | None = None, *, models: list[BiasModel] | None = None,
                        progress: bool = False, **params: Any) -> BiasResult:
    """Train (or load) the models, evaluate them, explain each on ``explain_split`` and summarise.

    Pass a :class:`BiasParams` or keyword parameters (validated by :func:`validate_bias_params`);
    ``models`` reuses models from :func:`train_bias_models`.
    """
    p = p if p is not None else validate_bias_params(**params)
    models = models if models is not None else train_bias_models(p, progress=progress)
    splits = bias_splits(p)
    target = splits[p.explain_split]
    rows, per_sample, runs = [], [], {}
    for m in models:
        run = explain(m.classifier, target, cam=p.cam, alpha=p.alpha, beta=p.beta, judge=p.judge,
                      run_dir=_run_subdir(p, m, target), threshold=p.threshold, progress=progress, verbose=False)
        runs[m.name] = run
        t = run.table.reset_index(drop=True)
        judged = t[t["judge_status"] == "ok"]
        energy = cam_energy(run, target)
        detail = t[["id", "label", "predicted_name", "correct", "score", "quadrant"]].merge(energy, on="id", how="left")
        per_sample.append(detail.assign(model=m.name, kind=m.kind, rate=m.rate))
        n = len(judged)
        low = judged["quadrant"].isin(["Correct-Low", "Wrong-Low"])
        rows.append({
            "model": m.name, "kind": m.kind, "rate": m.rate,
            **{f"accuracy_{name}": accuracy(m.classifier, split) for name, split in splits.items()},
            "n_judged": n,
            "flagged_share": float(low.mean()) if n else np.nan,
            "correct_low_share": float((judged["quadrant"] == "Correct-Low").mean()) if n else np.nan,
            "n_correct": int(judged["quadrant"].isin(["Correct-High", "Correct-Low"]).sum()),
            "rfwr_share_of_correct": _share(judged["quadrant"], "Correct-Low", ["Correct-High", "Correct-Low"]),
            "wrong_share_of_flagged": _share(judged["quadrant"], "Wrong-Low", ["Correct-Low", "Wrong-Low"]),
            "mean_score": float(judged["score"].mean()) if n else np.nan,
            "energy_on_shortcut": float(energy["energy_on_shortcut"].mean()),
            "energy_on_object": float(energy["energy_on_object"].mean()),
            "peak_on_shortcut": float(energy["peak_on_shortcut"].astype(float).mean()),
            "predicted_shortcut_class": float((t["predicted_name"] == p.shortcut_class).mean()),
            "run_dir": str(run.run_dir),
        })
    table = pd.DataFrame(rows)
    samples = pd.concat(per_sample, ignore_index=True)
    return BiasResult(p, table, samples, runs, _rate_correlations(table))


# ----------------------------------------------------------------------------- over seeds
@dataclass
class SeedsResult:
    """The experiment once per seed: per-seed correlations (``per_seed``: seed × outcome) and a
    t-interval on the mean r of each outcome (``summary``)."""

    results: dict[int, BiasResult]
    per_seed: pd.DataFrame
    summary: pd.DataFrame


def bias_over_seeds(p: BiasParams | None = None, seeds: tuple[int, ...] = (0, 1, 2), *, ci: float = 0.95,
                    progress: bool = False, **params: Any) -> SeedsResult:
    """Run the experiment for each seed (models trained on the seed's split, test objects drawn
    from it) and summarise r(rate, outcome) across seeds: mean, sd and a t-interval."""
    base = p if p is not None else validate_bias_params(**params)
    if len(seeds) < 2 or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds: give 2 or more distinct seeds, got {seeds!r}")
    results, rows = {}, []
    for seed in seeds:
        q = base.model_copy(update={"seed": int(seed), "run_dir": str(Path(base.run_dir) / f"seed-{seed}")})
        res = run_bias_experiment(q, progress=progress)
        results[int(seed)] = res
        for outcome, r in res.correlation["pearson_r"].items():
            rows.append({"seed": int(seed), "outcome": outcome, "pearson_r": r})
    per_seed = pd.DataFrame(rows).pivot(index="seed", columns="outcome", values="pearson_r")
    summary = []
    for outcome in per_seed.columns:
        r = per_seed[outcome].dropna().to_numpy(float)
        row = {"outcome": outcome, "n_seeds": len(r), "mean_r": np.nan, "sd_r": np.nan, "ci_low": np.nan,
               "ci_high": np.nan}
        if len(r) >= 2:
            half = stats.t.ppf(0.5 + ci / 2, len(r) - 1) * r.std(ddof=1) / np.sqrt(len(r))
            row.update(mean_r=float(r.mean()), sd_r=float(r.std(ddof=1)), ci_low=float(max(-1.0, r.mean() - half)),
                       ci_high=float(min(1.0, r.mean() + half)))
        summary.append(row)
    return SeedsResult(results, per_seed, pd.DataFrame(summary).set_index("outcome"))
