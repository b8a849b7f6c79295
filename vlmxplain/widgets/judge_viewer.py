"""JudgeViewer: one sample of a run at a time — what the judge saw and what it said.

Judge text (description, justification, raw response) is untrusted and shown escaped.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import pandas as pd
import traitlets as tl
from PIL import Image

from ..core.checks import validate_threshold
from ..core.defaults import SCORE_MAX, SCORE_MIN
from ..core.quadrants import QUADRANT_VALUES
from ..viz.html import esc, raw_response_html, sample_card_html
from .logic import JUDGE_STATUSES, clamp, class_options, filter_table, score_range_text, validate_score_range, with_threshold
from .common import StaticRepr, blank_image, button, encode_image, html_widget, image_widget, img_tag

if TYPE_CHECKING:  # pragma: no cover
    from ..store import Run

ALL = "(all)"
_CACHE_SIZE = 32


class JudgeViewer(StaticRepr, widgets.VBox):
    """Browse a run's samples one at a time: ``vx.JudgeViewer(run)``.

    Traits: ``position`` (0-based, within the filtered samples), the filters ``quadrant``,
    ``label`` (true class), ``score_range`` ((low, high) or None) and ``status``, and
    ``threshold`` (for the quadrant column). ``show(sample_id)`` jumps to one sample.
    """

    panel_title = "JudgeViewer"
    position = tl.Int(0)
    quadrant = tl.Unicode(None, allow_none=True)
    label = tl.Unicode(None, allow_none=True)
    score_range = tl.Tuple(tl.Float(), tl.Float(), default_value=None, allow_none=True)
    status = tl.Unicode(None, allow_none=True)
    threshold = tl.Float(2.5)

    def __init__(self, run: "Run", *, quadrant: str | None = None, label: str | None = None,
                 score_range: tuple[float, float] | None = None, status: str | None = None,
                 threshold: float | None = None, sample: str | None = None, embedded: bool = False) -> None:
        self.run = run
        self._ready = self._syncing = False
        self._images: OrderedDict[str, tuple[bytes, bytes, bytes, Any]] = OrderedDict()
        self._load_table()
        self._build_controls()
        super().__init__(children=self._layout())
        self.add_class("vx-panel")
        self.add_class("vx-judge-viewer")
        if embedded:
            self.add_class("vx-embedded")
        self.threshold = run.threshold if threshold is None else threshold
        self.quadrant, self.label, self.score_range, self.status = quadrant, label, score_range, status
        self._ready = True
        self._sync_filter_controls()
        if sample is not None:
            self.show(sample)
        else:
            self._update()

    # ------------------------------------------------------------------ data
    def _load_table(self) -> None:
        self._base = self.run.table_for()
        view = self.run.view
        raw = self.run.store.judgments(view.judge.judge, view.judge.prompt_version, view.alpha, view.beta, repeat=0)
        self._raw = dict(zip(raw["id"], raw["raw"])) if len(raw) else {}

    def refresh(self) -> None:
        """Reload the run table from the store (e.g. while a run is still being judged)."""
        self._load_table()
        self._images.clear()
        self._update()

    @property
    def table(self) -> pd.DataFrame:
        """The run table at the viewer's threshold, with the current filters applied."""
        return filter_table(with_threshold(self._base, self.threshold), quadrant=self.quadrant, label=self.label,
                            score_range=self.score_range, status=self.status)

    @property
    def ids(self) -> list[str]:
        """Sample ids the viewer pages through (filtered, in run order)."""
        return list(self.table["id"])

    @property
    def current_id(self) -> str | None:
        ids = self.ids
        return ids[clamp(self.position, len(ids))] if ids else None

    # ------------------------------------------------------------------ validation
    @tl.validate("quadrant")
    def _valid_quadrant(self, proposal: dict) -> str | None:
        q = proposal["value"]
        if q is not None and q not in QUADRANT_VALUES:
            raise ValueError(f"quadrant: must be one of {QUADRANT_VALUES} or None, got {q!r}")
        return q

    @tl.validate("status")
    def _valid_status(self, proposal: dict) -> str | None:
        s = proposal["value"]
        if s is not None and s not in JUDGE_STATUSES:
            raise ValueError(f"status: must be one of {JUDGE_STATUSES} or None, got {s!r}")
        return s

    @tl.validate("score_range")
    def _valid_range(self, proposal: dict) -> tuple[float, float] | None:
        return validate_score_range(proposal["value"])

    @tl.validate("position")
    def _valid_position(self, proposal: dict) -> int:
        return clamp(proposal["value"], len(self.ids)) if self._ready else int(proposal["value"])

    @tl.validate("threshold")
    def _valid_threshold(self, proposal: dict) -> float:
        return validate_threshold(proposal["value"])

    # ------------------------------------------------------------------ layout
    def _build_controls(self) -> None:
        self._prev = button("◀ prev", "vx-prev")
        self._next = button("next ▶", "vx-next")
        self._jump = widgets.BoundedIntText(value=1, min=1, max=max(1, len(self._base)), description="go to",
                                            layout=widgets.Layout(width="11em"))
        self._jump.add_class("vx-jump")
        self.position_label = html_widget("vx-position")
        self._f_quadrant = widgets.Dropdown(options=[ALL, *QUADRANT_VALUES], description="quadrant")
        self._f_quadrant.add_class("vx-filter-quadrant")
        self._f_label = widgets.Dropdown(options=[ALL, *class_options(self._base)], description="class")
        self._f_label.add_class("vx-filter-class")
        self._f_status = widgets.Dropdown(options=[ALL, *JUDGE_STATUSES], description="status")
        self._f_status.add_class("vx-filter-status")
        # The range is written in its own label beside the slider: the slider's built-in readout
        # ("0.0 – 5.0") is wider than its box and ran over the track.
        self._f_score = widgets.FloatRangeSlider(value=(SCORE_MIN, SCORE_MAX), min=SCORE_MIN, max=SCORE_MAX, step=0.1,
                                                 description="score", continuous_update=False, readout=False,
                                                 layout=widgets.Layout(width="20em"))
        self._f_score.add_class("vx-filter-score")
        self._f_score_label = html_widget("vx-filter-score-range", score_range_text(self._f_score.value),
                                          layout=widgets.Layout(width="7em", margin="0 0 0 8px"))
        self._f_score.observe(lambda c: setattr(self._f_score_label, "value", score_range_text(c["new"])), "value")
        self.original = image_widget("vx-original", "32%")
        self.overlay = image_widget("vx-overlay", "32%")
        self.masked = image_widget("vx-masked", "32%")
        self.card = html_widget("vx-card")
        self.raw = html_widget("vx-raw")
        self._raw_box = widgets.Accordion(children=[self.raw], selected_index=None)
        self._raw_box.set_title(0, "raw judge response")
        self._raw_box.add_class("vx-raw-box")
        self._prev.on_click(lambda _: self.step(-1))
        self._next.on_click(lambda _: self.step(+1))
        self._jump.observe(self._on_jump, "value")
        for w in (self._f_quadrant, self._f_label, self._f_status, self._f_score):
            w.observe(self._on_filter_control, "value")

    def _layout(self) -> list[widgets.Widget]:
        captions = widgets.HBox([html_widget("vx-caption", f"<b>{t}</b>", layout=widgets.Layout(width="32%"))
                                 for t in ("original", "overlay (CAM)", "masked (what the judge saw)")])
        return [
            widgets.HBox([self._f_quadrant, self._f_label]), widgets.HBox([self._f_status, self._f_score, self._f_score_label]),
            widgets.HBox([self._prev, self._next, self._jump, self.position_label]),
            captions, widgets.HBox([self.original, self.overlay, self.masked]), self.card, self._raw_box,
        ]

    # ------------------------------------------------------------------ navigation
    def step(self, delta: int) -> None:
        """Move ``delta`` samples forward (negative: back) within the filtered samples, clamped."""
        self.position = clamp(self.position + int(delta), len(self.ids))

    def show(self, sample_id: str) -> None:
        """Jump to ``sample_id``; filters that hide it are cleared."""
        if sample_id not in self._base.index:
            raise KeyError(f"sample_id: {sample_id!r} is not a sample of this run")
        ids = self.ids
        if sample_id not in ids:
            with self.hold_trait_notifications():
                self.quadrant = self.label = self.score_range = self.status = None
            ids = self.ids
        target = ids.index(sample_id)
        if target == self.position:
            self._update()
        self.position = target

    def _on_jump(self, change: dict) -> None:
        if self._ready and not self._syncing:
            self.position = clamp(int(change["new"]) - 1, len(self.ids))

    def _on_filter_control(self, change: dict) -> None:
        if not self._ready:
            return
        lo, hi = self._f_score.value
        full = lo <= SCORE_MIN and hi >= SCORE_MAX
        with self.hold_trait_notifications():
            self.quadrant = None if self._f_quadrant.value == ALL else self._f_quadrant.value
            self.label = None if self._f_label.value == ALL else self._f_label.value
            self.status = None if self._f_status.value == ALL else self._f_status.value
            self.score_range = None if full else (float(lo), float(hi))

    def _sync_filter_controls(self) -> None:
        ready, self._ready = self._ready, False
        try:
            self._f_quadrant.value = self.quadrant or ALL
            if self.label is not None and self.label not in self._f_label.options:
                self._f_label.options = [*self._f_label.options, self.label]
            self._f_label.value = self.label or ALL
            self._f_status.value = self.status or ALL
            self._f_score.value = self.score_range or (SCORE_MIN, SCORE_MAX)
        finally:
            self._ready = ready

    @tl.observe("quadrant", "label", "score_range", "status", "threshold")
    def _on_filters(self, change: dict) -> None:
        if not self._ready:
            return
        self._sync_filter_controls()
        if self.position != 0:
            self.position = 0  # a new selection starts at its first sample
        else:
            self._update()

    @tl.observe("position")
    def _on_position(self, change: dict) -> None:
        if self._ready:
            self._update()

    # ------------------------------------------------------------------ rendering
    def _views(self, sample_id: str) -> tuple[bytes, bytes, bytes, Any]:
        if sample_id not in self._images:
            item = self.run.judge_input(sample_id)
            views = (item.image, item.overlay, item.masked)
            self._images[sample_id] = (*(encode_image(v) for v in views), views)
            if len(self._images) > _CACHE_SIZE:
                self._images.popitem(last=False)
        return self._images[sample_id]

    def _update(self) -> None:
        table = self.table
        n = len(table)
        pos = clamp(self.position, n)
        self._prev.disabled = pos <= 0
        self._next.disabled = pos >= n - 1
        self._syncing = True
        try:
            self._jump.max = max(1, n)
            self._jump.value = pos + 1
        finally:
            self._syncing = False
        if n == 0:
            self.position_label.value = "<b>no sample matches the filters</b>"
            self.card.value = ""
            self.raw.value = ""
            for w in (self.original, self.overlay, self.masked):
                w.value = blank_image()
            return
        row = table.iloc[pos]
        sid = row["id"]
        self.position_label.value = f"<b>{pos + 1} / {n}</b> · {esc(sid)}"
        self.card.value = sample_card_html(row.to_dict())
        self.raw.value = raw_response_html(self._raw.get(sid))
        try:
            original, heat, masked, _ = self._views(sid)
        except KeyError as err:  # skipped or pending: no stored image or CAM
            original = heat = masked = blank_image()
            self.card.value += f"<p class='vx-note'><i>{esc(err.args[0] if err.args else err)}</i></p>"
        self.original.value, self.overlay.value, self.masked.value = original, heat, masked

    def to_html(self) -> str:
        """Static rendering: the current sample's images, facts and judge text (escaped)."""
        sid = self.current_id
        if sid is None:
            return "<p>no sample matches the filters</p>"
        row = self.table.loc[sid].to_dict()
        try:
            pics: tuple[Image.Image, ...] = self._views(sid)[3]
        except KeyError:
            pics = ()
        figs = "".join(img_tag(p, f"{c} of {sid}", 300, c) for p, c in zip(pics, ("original", "overlay", "masked")))
        return f"<p>{self.position_label.value}</p><div>{figs}</div>{sample_card_html(row)}"

    def __repr__(self) -> str:
        return (f"JudgeViewer(run={str(self.run.run_dir)!r}, sample={self.current_id!r}, position={self.position}, "
                f"quadrant={self.quadrant!r}, label={self.label!r}, score_range={self.score_range}, "
                f"status={self.status!r})")
