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
Wrong-Low), the Correct-Low share (right for the wrong reason), and the share of CAM energy on
the dot box and on the object (from the raw CAM upsampled to the image, :func:`energy_in_box` /
:func:`energy_on_mask`). The paper's claim
is checked by the correlation between shortcut rate and flagged share (target: |r| > 0.5).
Figures: :mod:`vlmxplain.analysis.bias_plots`.

Models are trained once and cached on disk (:func:`vlmxplain.params.shapes_model`).
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from ..masks import saliency as upsample_saliency
from .quadrants import validate_threshold

__all__ = [
    "BiasModel", "BiasParams", "BiasResult", "DEFAULT_RATES", "bias_splits", "cam_energy", "energy_in_box",
    "energy_on_mask", "load_experiment_classifier", "parse_shortcut_classifier", "run_bias_experiment",
    "shortcut_model", "shortcut_train_spec", "train_bias_models", "validate_bias_params",
]

DEFAULT_RATES = (0.0, 0.25, 0.5, 0.75, 1.0)
DEFAULT_CLASSES = ("circle", "square", "triangle")
CONTROL = "control"
SPLITS = ("dotted", "moved", "clean")
_POSITIONS = ("top-left", "top-right", "bottom-left", "bottom-right", "random-corner", "random")


# ----------------------------------------------------------------------------- CAM energy
def energy_on_mask(saliency: np.ndarray, mask: np.ndarray) -> float:
    """Share of the saliency mass on a region: ``sum(v * mask) / sum(v)`` (0 for an all-zero map)."""
    v = np.asarray(saliency, dtype=np.float64)
    m = np.asarray(mask, dtype=np.float64)
    if v.shape != m.shape:
        raise ValueError(f"mask: shape {m.shape} does not match the saliency map's {v.shape}")
    if (v < 0).any():
        raise ValueError("saliency: must be non-negative (a normalised CAM)")
    total = v.sum()
    return float((v * m).sum() / total) if total > 0 else 0.0


def energy_in_box(saliency: np.ndarray, box: Sequence[int], margin: int = 0) -> float:
    """Share of the saliency mass inside ``box = (x0, y0, x1, y1)`` (exclusive ends, image pixels),
    grown by ``margin`` pixels on each side and clipped to the image."""
    v = np.asarray(saliency)
    if v.ndim != 2:
        raise ValueError(f"saliency: expected a 2-D map, got shape {v.shape}")
    if len(box) != 4:
        raise ValueError(f"box: expected (x0, y0, x1, y1), got {box!r}")
    x0, y0, x1, y1 = (int(b) for b in box)
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"box: empty box {box!r} (need x1 > x0 and y1 > y0)")
    h, w = v.shape
    region = np.zeros((h, w), bool)
    region[max(0, y0 - margin):min(h, y1 + margin), max(0, x0 - margin):min(w, x1 + margin)] = True
    return energy_on_mask(v, region)


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
@dataclass(frozen=True)
class BiasParams:
    """Validated parameters of the shortcut-bias experiment."""

    rates: tuple[float, ...] = DEFAULT_RATES
    control: bool = True
    shortcut_class: str = "circle"
    classes: tuple[str, ...] = DEFAULT_CLASSES
    n_train: int = 1800
    epochs: int = 4
    n_test: int = 90
    explain_split: str = "dotted"
    moved_position: str = "bottom-right"
    seed: int = 0
    cam: str = "gradcam"
    judge: str = "offline:groundtruth"
    alpha: float = 25.0
    beta: float = 0.6
    threshold: float = 2.5
    run_dir: str = "runs/shortcut_bias"
    figures_dir: str = "figures"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name}: must be an integer >= {minimum}, got {value!r}")
    return int(value)


def validate_bias_params(**params: Any) -> BiasParams:
    """Check every parameter of the experiment; ``ValueError`` names the first bad one."""
    from ..cams import get_cam_method
    from ..datasets import SHAPE_NAMES
    from ..judges.registry import parse_judge_spec
    from ..masks import validate_mask_params

    unknown = sorted(set(params) - set(BiasParams.__dataclass_fields__))
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown parameter; known: {', '.join(BiasParams.__dataclass_fields__)}")
    p = {**BiasParams().as_dict(), **params}
    rates = p["rates"]
    if isinstance(rates, (int, float)) and not isinstance(rates, bool):
        rates = [rates]
    try:
        rates = tuple(float(r) for r in rates)
    except (TypeError, ValueError):
        raise ValueError(f"rates: give a list of shortcut rates in [0, 1], got {p['rates']!r}") from None
    if not rates or any(not 0.0 <= r <= 1.0 for r in rates) or len(set(rates)) != len(rates):
        raise ValueError(f"rates: give distinct shortcut rates in [0, 1], got {p['rates']!r}")
    classes = tuple(p["classes"]) if isinstance(p["classes"], (list, tuple)) else ()
    if len(classes) < 2 or any(c not in SHAPE_NAMES for c in classes) or len(set(classes)) != len(classes):
        raise ValueError(f"classes: give 2+ distinct names from {SHAPE_NAMES}, got {p['classes']!r}")
    if p["shortcut_class"] not in classes:
        raise ValueError(f"shortcut_class: must be one of {classes}, got {p['shortcut_class']!r}")
    if p["moved_position"] not in _POSITIONS:
        raise ValueError(f"moved_position: must be one of {_POSITIONS}, got {p['moved_position']!r}")
    if p["moved_position"] == "top-left":
        raise ValueError("moved_position: 'top-left' is where the training dot sits; pick another place")
    if p["explain_split"] not in SPLITS:
        raise ValueError(f"explain_split: must be one of {SPLITS}, got {p['explain_split']!r}")
    if not isinstance(p["control"], bool):
        raise ValueError(f"control: must be true or false, got {p['control']!r}")
    alpha, beta = validate_mask_params(p["alpha"], p["beta"])
    parse_judge_spec(p["judge"])
    for name in ("run_dir", "figures_dir"):
        if not isinstance(p[name], str) or not p[name].strip():
            raise ValueError(f"{name}: give a directory path, got {p[name]!r}")
    return BiasParams(
        rates=tuple(sorted(rates)), control=p["control"], shortcut_class=p["shortcut_class"], classes=classes,
        n_train=_positive_int("n_train", p["n_train"], 30), epochs=_positive_int("epochs", p["epochs"]),
        n_test=_positive_int("n_test", p["n_test"], 3), explain_split=p["explain_split"],
        moved_position=p["moved_position"],
        seed=_positive_int("seed", p["seed"], 0), cam=get_cam_method(p["cam"]).name, judge=p["judge"],
        alpha=alpha, beta=beta, threshold=validate_threshold(p["threshold"]), run_dir=p["run_dir"],
        figures_dir=p["figures_dir"],
    )


# ----------------------------------------------------------------------------- models and splits
@dataclass
class BiasModel:
    """One trained model of the experiment: ``kind`` is "shortcut" or "control"."""

    name: str
    kind: str
    rate: float
    classifier: Any
    train_spec: dict = field(default_factory=dict)


def shortcut_train_spec(rate: float, shortcut_class: str = "circle", *, classes: Sequence[str] = DEFAULT_CLASSES,
                        n_train: int = 1800, seed: int = 0, shortcut_on: str = "class") -> dict[str, Any]:
    """The shapes parameters of a training split with the dot on ``rate`` of the eligible images.

    Rate 0 is the clean split, spelled exactly like the offline shapes classifier's
    (:func:`vlmxplain.params.resolve_classifier` with ``shapes``), so both share one cached model.
    """
    spec: dict[str, Any] = {"n": int(n_train), "seed": 1000 + int(seed)}
    if tuple(classes) != DEFAULT_CLASSES:
        spec["classes"] = list(classes)
    if rate > 0:
        spec.update(shortcut_on=shortcut_on, shortcut_rate=float(rate))
        if shortcut_on in ("class", "others"):
            spec["shortcut_class"] = shortcut_class
    return spec


def shortcut_model(rate: float, shortcut_class: str = "circle", *, classes: Sequence[str] = DEFAULT_CLASSES,
                   n_train: int = 1800, epochs: int = 4, seed: int = 0, progress: bool = False):
    """A ShapesNet trained with the dot on ``rate`` of the ``shortcut_class`` training images
    (trained once, then loaded from the model cache, ``$VLMXPLAIN_MODELS``)."""
    from ..params import shapes_model

    if not 0.0 <= float(rate) <= 1.0:
        raise ValueError(f"rate: must be in [0, 1], got {rate!r}")
    spec = shortcut_train_spec(rate, shortcut_class, classes=classes, n_train=n_train, seed=seed)
    return shapes_model(spec, epochs=epochs, progress=progress)


def parse_shortcut_classifier(spec: str) -> tuple[float, str] | None:
    """``shortcut:<rate>[:<class>]`` → (rate, class); None for any other classifier spec."""
    if not isinstance(spec, str) or not spec.startswith("shortcut:"):
        return None
    parts = spec.split(":")
    try:
        rate = float(parts[1])
    except (IndexError, ValueError):
        rate = float("nan")
    if len(parts) > 3 or not 0.0 <= rate <= 1.0:
        raise ValueError(f"classifier: {spec!r}: expected 'shortcut:<rate in [0, 1]>[:<class>]', e.g. 'shortcut:0.75'")
    cls = parts[2] if len(parts) == 3 else "circle"
    if cls not in DEFAULT_CLASSES:
        raise ValueError(f"classifier: {spec!r}: the shortcut class must be one of {DEFAULT_CLASSES}, got {cls!r}")
    return rate, cls


def load_experiment_classifier(classifier: str, data: str, progress: bool = False):
    """Like :func:`vlmxplain.params.resolve_classifier`, plus ``shortcut:<rate>[:<class>]``: the
    bias experiment's ShapesNet trained with the dot on that share of the class (cached)."""
    from ..params import resolve_classifier

    parsed = parse_shortcut_classifier(classifier)
    if parsed is None:
        return resolve_classifier(classifier, data)
    return shortcut_model(parsed[0], parsed[1], progress=progress)


def train_bias_models(p: BiasParams, progress: bool = False) -> list[BiasModel]:
    """Train (or load from the model cache) one model per rate, plus the control (the dot on
    every class half the time: present, but it says nothing about the label)."""
    from ..params import shapes_model

    common = {"classes": p.classes, "n_train": p.n_train, "seed": p.seed}
    specs = [(f"rate-{r:g}", "shortcut", r, shortcut_train_spec(r, p.shortcut_class, **common)) for r in p.rates]
    if p.control:
        specs.append((CONTROL, "control", 0.5, shortcut_train_spec(0.5, shortcut_on="all", **common)))
    return [BiasModel(name, kind, rate, shapes_model(spec, epochs=p.epochs, progress=progress), spec)
            for name, kind, rate, spec in specs]


def bias_splits(p: BiasParams) -> dict[str, Any]:
    """The paired test splits (same objects): ``clean`` (no dot), ``dotted`` (the dot on every
    class at its training place) and ``moved`` (the dot on every class at ``moved_position``)."""
    from ..datasets import shapes

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
    for col in ("flagged_share", "correct_low_share", "energy_on_shortcut", "peak_on_shortcut",
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
    from ..pipeline import explain
    from ..training import accuracy

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
