"""MaskTuner: tune alpha, beta, the CAM method and the explained class live on one image.

The CAM is computed once per (image, method, class) and cached with its saliency and overlay;
moving alpha or beta only re-derives the sigmoid mask (a few milliseconds for a 512-px image).
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any, Sequence

import ipywidgets as widgets
import numpy as np
import traitlets as tl
from PIL import Image

from ..cams import CAM_METHODS, CostlyMethodWarning, compute_cams, get_cam_method
from ..core.checks import validate_mask_params
from ..core.defaults import DEFAULT_ALPHA, DEFAULT_BETA, PREVIEW_SIZE
from ..datasets import Dataset, InputSkipped, Sample
from ..masks.images import preview_of
from ..masks.saliency import overlay, saliency
from ..models.classifiers import Classifier
from ..viz.html import esc, fmt_share
from .logic import TUNER_VIEWS, explain_snippet, render_view, target_options, view_captions
from .common import StaticRepr, blank_image, encode_image, html_widget, image_widget, img_tag

PREDICTED = -1  # the target dropdown's value for "the predicted class"


@dataclass
class _Cam:
    """One cached CAM with everything alpha/beta changes need."""

    raw: np.ndarray
    saliency: np.ndarray
    heat: np.ndarray


@dataclass
class _ImageInfo:
    name: str
    array: np.ndarray  # H×W×3 float32
    image: Image.Image
    prediction: int
    confidence: float
    top: list[tuple[int, float]]
    label: str | None = None  # the true label, when the source carries one


def _sources(source: Any) -> tuple[list[str], Any]:
    """Names of the pickable images and the object to load them from."""
    if isinstance(source, Image.Image):
        return ["image"], [source]
    if isinstance(source, Sample):
        return [source.id], [source]
    if isinstance(source, Dataset):
        if len(source) == 0:
            raise ValueError("image_or_dataset: the dataset is empty")
        return source.ids, source
    if isinstance(source, Sequence) and not isinstance(source, (str, bytes)):
        items = list(source)
        if not items:
            raise ValueError("image_or_dataset: the list is empty")
        for k, it in enumerate(items):
            if not isinstance(it, (Image.Image, Sample)):
                raise TypeError(f"image_or_dataset: item {k} is a {type(it).__name__}, expected a PIL image or Sample")
        return [it.id if isinstance(it, Sample) else f"image {k}" for k, it in enumerate(items)], items
    raise TypeError("image_or_dataset: expected a PIL image, a Sample, a Dataset or a list, "
                    f"got {type(source).__name__}")


class MaskTuner(StaticRepr, widgets.VBox):
    """Live alpha/beta/CAM-method panel: ``MaskTuner(clf, image_or_dataset)``.

    State lives in the traits ``index``, ``method``, ``alpha``, ``beta``, ``view`` and ``target``
    (``None`` = the predicted class); set them from code or move the controls. ``max_side``
    shrinks the image like the pipeline's working copy (what judges see); ``None`` keeps it.
    """

    panel_title = "MaskTuner"
    index = tl.Int(0)
    method = tl.Unicode("gradcam")
    alpha = tl.Float(DEFAULT_ALPHA)
    beta = tl.Float(DEFAULT_BETA)
    view = tl.Enum(TUNER_VIEWS, default_value="side by side")
    target = tl.Int(None, allow_none=True)
    kept_share = tl.Float(0.0, read_only=True)

    def __init__(self, clf: Classifier, image_or_dataset: Any, *, method: str = "gradcam",
                 alpha: float = DEFAULT_ALPHA, beta: float = DEFAULT_BETA, view: str = "side by side",
                 target: int | None = None, index: int = 0, max_side: int | None = PREVIEW_SIZE) -> None:
        if not isinstance(clf, Classifier):
            raise TypeError(f"clf: expected a vlmxplain Classifier (vx.load_classifier), got {type(clf).__name__}")
        if max_side is not None and max_side < 16:
            raise ValueError(f"max_side: must be >= 16 or None, got {max_side}")
        self.clf = clf
        self.max_side = max_side
        self.names, self._source = _sources(image_or_dataset)
        self._images: dict[int, _ImageInfo] = {}
        self._cams: dict[tuple[int, str, int], _Cam] = {}
        self.cam_computations = 0  #: how many CAMs this panel has computed (cache misses)
        self.last_render_s = 0.0  #: server-side seconds of the last frame (mask + compose + encode)
        self._frame: Image.Image | None = None
        self._building = True
        self._syncing_target = False
        self._build_controls()
        super().__init__(children=self._layout())
        self.add_class("vx-panel")
        self.add_class("vx-mask-tuner")
        self.method = method
        self.alpha, self.beta = validate_mask_params(alpha, beta)
        self.view = view
        self.index = index
        self.target = target
        for control, name in [(self._picker, "index"), (self._method, "method"), (self._alpha, "alpha"),
                              (self._beta, "beta"), (self._view, "view")]:
            if control is not None:
                widgets.link((self, name), (control, "value"))  # the panel's value wins at start
        self._target.observe(self._on_target_pick, "value")
        self._building = False
        self._refresh()

    # ------------------------------------------------------------------ layout
    def _build_controls(self) -> None:
        n = len(self.names)
        self._picker = None
        if n > 1:
            self._picker = widgets.Dropdown(options=[(name, i) for i, name in enumerate(self.names)],
                                            description="image")
            self._picker.add_class("vx-picker")
        self._method = widgets.Dropdown(
            options=[(f"{m} (slow)" if spec.costly else m, m) for m, spec in CAM_METHODS.items()],
            description="CAM")
        self._method.add_class("vx-method")
        self._alpha = widgets.FloatSlider(min=1, max=100, step=0.5, description="alpha", continuous_update=True)
        self._alpha.add_class("vx-alpha")
        self._beta = widgets.FloatSlider(min=0, max=1, step=0.01, description="beta", continuous_update=True)
        self._beta.add_class("vx-beta")
        self._view = widgets.ToggleButtons(options=list(TUNER_VIEWS), description="view")
        self._view.add_class("vx-view")
        self._target = widgets.Dropdown(options=[("predicted class", PREDICTED)], description="explain")
        self._target.add_class("vx-target")
        self.image = image_widget("vx-image")
        self.captions = html_widget("vx-captions")
        self.info = html_widget("vx-info")
        self.snippet = html_widget("vx-snippet")
        self.status = html_widget("vx-status")

    def _layout(self) -> list[widgets.Widget]:
        top = [w for w in (self._picker, self._method, self._target) if w is not None]
        return [widgets.HBox(top), widgets.HBox([self._alpha, self._beta]), self._view, self.info, self.captions,
                self.image, self.snippet, self.status]

    def _check_index(self, index: int) -> int:
        if not 0 <= int(index) < len(self.names):
            raise ValueError(f"index: must be in 0..{len(self.names) - 1}, got {index}")
        return int(index)

    # ------------------------------------------------------------------ validation
    @tl.validate("alpha", "beta")
    def _valid_mask_param(self, proposal: dict) -> float:
        name, value = proposal["trait"].name, proposal["value"]
        a, b = validate_mask_params(value if name == "alpha" else self.alpha, value if name == "beta" else self.beta)
        if name == "alpha":  # widen the slider first, so it cannot clamp a value set from code
            self._alpha.max, self._alpha.min = max(self._alpha.max, a), min(self._alpha.min, a)
        return a if name == "alpha" else b

    @tl.validate("method")
    def _valid_method(self, proposal: dict) -> str:
        return get_cam_method(proposal["value"]).name

    @tl.validate("index")
    def _valid_index(self, proposal: dict) -> int:
        return self._check_index(proposal["value"])

    @tl.validate("target")
    def _valid_target(self, proposal: dict) -> int | None:
        t = proposal["value"]
        if t is not None and not 0 <= t < self.clf.num_classes:
            raise ValueError(f"target: class index must be in 0..{self.clf.num_classes - 1} or None, got {t}")
        return t

    # ------------------------------------------------------------------ reactions
    @tl.observe("index")
    def _on_image(self, change: dict) -> None:
        if self.target is not None:
            self.target = None  # a class chosen for one image means nothing for the next; refreshes
        else:
            self._refresh()

    @tl.observe("method", "target")
    def _on_cam(self, change: dict) -> None:
        self._refresh()

    @tl.observe("alpha", "beta", "view")
    def _on_mask(self, change: dict) -> None:
        self._render()

    def _on_target_pick(self, change: dict) -> None:
        if self._syncing_target:
            return
        value = change["new"]
        self.target = None if value in (None, PREDICTED) else int(value)

    # ------------------------------------------------------------------ computation
    def _load(self, i: int) -> _ImageInfo:
        if i in self._images:
            return self._images[i]
        item = self._source[i]
        image = item.image if isinstance(item, Sample) else item.convert("RGB")
        if self.max_side is not None:
            image = preview_of(image, self.max_side)
        res = self._compute(image, self.method, None)
        info = _ImageInfo(self.names[i], np.asarray(image, dtype=np.float32), image, int(res.predictions[0]),
                          float(res.confidences[0]), [(int(c), float(p)) for c, p in zip(res.top_classes[0],
                                                                                         res.top_probs[0])],
                          label=item.label if isinstance(item, Sample) else None)
        self._images[i] = info
        self._store(i, self.method, int(res.targets[0]), res.maps[0])
        return info

    def _compute(self, image: Image.Image, method: str, target: int | None):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CostlyMethodWarning)
            res = compute_cams(self.clf, [image], method, targets=None if target is None else [target])
        self.cam_computations += 1
        return res

    def _store(self, i: int, method: str, target: int, raw: np.ndarray) -> _Cam:
        img = self._images[i].image
        heat = np.asarray(overlay(img, raw))
        cam = _Cam(raw=raw, saliency=saliency(raw, img.size), heat=heat)
        self._cams[(i, method, target)] = cam
        return cam

    @property
    def explained_class(self) -> int | None:
        """The class the shown CAM explains (the prediction unless ``target`` is set)."""
        info = self._images.get(self.index)
        if info is None:
            return self.target
        return info.prediction if self.target is None else self.target

    def _current_cam(self) -> _Cam:
        info = self._load(self.index)
        target = info.prediction if self.target is None else self.target
        key = (self.index, self.method, target)
        if key not in self._cams:
            res = self._compute(info.image, self.method, target)
            return self._store(self.index, self.method, target, res.maps[0])
        return self._cams[key]

    def _refresh(self) -> None:
        """Image, method or class changed: fetch (or compute once) the CAM, then render."""
        if self._building:
            return
        spec = get_cam_method(self.method)
        self.status.value = f"<i>computing {esc(spec.name)} … (~40 s per image on a CPU)</i>" if spec.costly else ""
        try:
            self._current_cam()
        except InputSkipped as err:
            self._clear()
            name = esc(self.names[self.index])
            self.status.value = f"<span style='color:#b00020'>image {name}: {esc(err.reason)}</span>"
            return
        except Exception as err:
            self._clear()
            self.status.value = f"<span style='color:#b00020'>{esc(type(err).__name__)}: {esc(err)}</span>"
            return
        self.status.value = ""
        self._sync_target_options()
        self._render()

    def _clear(self) -> None:
        """Nothing to show for this image: no earlier image's frame, prediction or classes stay."""
        self._frame = None
        self.image.value = blank_image()
        self.info.value = self.captions.value = self.snippet.value = ""
        self._syncing_target = True
        try:
            self._target.options = [("predicted class", PREDICTED)]
            self._target.value = PREDICTED
        finally:
            self._syncing_target = False

    def _sync_target_options(self) -> None:
        info = self._images[self.index]
        options = target_options(self.clf.class_names, info.prediction, info.confidence, info.top, self.target,
                                 PREDICTED)
        self._syncing_target = True
        try:
            if list(self._target.options) != options:
                self._target.options = options
            self._target.value = PREDICTED if self.target is None else self.target
        finally:
            self._syncing_target = False

    def _render(self) -> None:
        """alpha, beta or view changed: re-derive the mask from the cached saliency."""
        key_target = self.explained_class
        cam = self._cams.get((self.index, self.method, key_target)) if key_target is not None else None
        if cam is None:
            return
        t0 = time.perf_counter()
        info = self._images[self.index]
        frame, kept = render_view(info.array, cam.saliency, cam.heat, self.alpha, self.beta, self.view)
        self.image.value = encode_image(frame)
        self.last_render_s = time.perf_counter() - t0
        self._frame = frame
        self.set_trait("kept_share", kept)
        self.info.value = self._info_html()
        self.captions.value = self._captions_html()
        self.snippet.value = (f"<pre style='user-select:all;background:#f6f6f6;padding:.4em'>"
                              f"{esc(self.code_snippet)}</pre>")

    # ------------------------------------------------------------------ outputs
    @property
    def code_snippet(self) -> str:
        """The current parameters as ``explain`` / papermill code."""
        return explain_snippet(cam=self.method, alpha=self.alpha, beta=self.beta, target=self.target)

    def _captions_html(self) -> str:
        """One caption per panel of the frame, each over its third (side by side) or the image."""
        cells = "".join(f"<span class='vx-caption' style='flex:1 1 0;text-align:center'>{esc(c)}</span>"
                        for c in view_captions(self.view, self.alpha, self.beta))
        return f"<div style='display:flex;gap:4px;font-size:90%;color:#333'>{cells}</div>"

    def _info_html(self) -> str:
        info = self._images[self.index]
        names = self.clf.class_names
        explained = names[self.explained_class]
        true = esc(info.label) if info.label else "<i>not given</i>"
        return (f"<span class='vx-true'>true label: <b>{true}</b></span> · <span class='vx-prediction'>prediction: <b>{esc(names[info.prediction])}</b> "
                f"({fmt_share(info.confidence)})</span> · <span class='vx-explained'>explaining: {esc(explained)}"
                f"</span> · <span class='vx-kept'>kept {fmt_share(self.kept_share)} of the image</span> · "
                f"<span class='vx-params'>{esc(self.method)}, alpha {self.alpha:g}, beta {self.beta:g}</span>")

    def snapshot(self) -> Image.Image:
        """The current frame as a PIL image (what the panel shows)."""
        if self._frame is None:
            raise RuntimeError("MaskTuner: nothing rendered yet (see the panel's status line)")
        return self._frame.copy()

    def to_html(self) -> str:
        """Static rendering: the current frame, the facts line and the code snippet."""
        if self._frame is None:
            return self.status.value or "<p>nothing rendered</p>"
        return (f"<p>{self._info_html()}</p>{self._captions_html()}"
                f"{img_tag(self._frame, f'{self.view} view of {self.names[self.index]}', max_width=900)}"
                f"<pre>{esc(self.code_snippet)}</pre>")

    def __repr__(self) -> str:
        return (f"MaskTuner(image={self.names[self.index]!r}, method={self.method!r}, alpha={self.alpha:g}, "
                f"beta={self.beta:g}, view={self.view!r}, target={self.target})")
