"""QuadrantBrowser: the clickable 2×2 matrix, a live threshold, a class filter, a paged gallery.

Clicking a cell selects its samples; clicking a thumbnail opens that sample in a
:class:`~vlmxplain.widgets.JudgeViewer` inside the panel. Quadrants are recomputed from the
loaded table (no store access) as the threshold moves.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import ipywidgets as widgets
import pandas as pd
import traitlets as tl

from ..core.checks import validate_threshold
from ..core.quadrants import QUADRANTS, QuadrantSummary, quadrant_summary
from ..masks.images import thumbnail
from ..viz.figures import share_text
from ..viz.html import css_name, esc, matrix_html, quadrant_cells
from .logic import class_options, filter_table, first_nonempty, page_count, page_items, thumb_caption, with_threshold
from .common import StaticRepr, blank_image, button, encode_image, html_widget, image_widget, img_tag, show
from .judge_viewer import ALL, JudgeViewer

if TYPE_CHECKING:  # pragma: no cover
    from ..store import Run

THUMB_VIEWS = ("masked", "overlay", "original")


class QuadrantBrowser(StaticRepr, widgets.VBox):
    """Browse a run by quadrant: ``vx.QuadrantBrowser(run)``.

    Traits: ``threshold``, ``label`` (class filter, None = all), ``quadrant`` (the selected
    cell; by default the first non-empty one) and ``page`` (0-based gallery page).
    """

    panel_title = "QuadrantBrowser"
    threshold = tl.Float(2.5)
    label = tl.Unicode(None, allow_none=True)
    quadrant = tl.Enum(QUADRANTS, default_value=None, allow_none=True)
    page = tl.Int(0)

    def __init__(self, run: "Run", *, threshold: float | None = None, label: str | None = None,
                 quadrant: str | None = None, page_size: int = 12, thumb_size: int = 200,
                 thumb_view: str = "masked") -> None:
        if not isinstance(page_size, int) or page_size < 1:
            raise ValueError(f"page_size: must be a positive integer, got {page_size!r}")
        if thumb_view not in THUMB_VIEWS:
            raise ValueError(f"thumb_view: must be one of {THUMB_VIEWS}, got {thumb_view!r}")
        if thumb_size < 16:
            raise ValueError(f"thumb_size: must be >= 16, got {thumb_size}")
        self.run, self.page_size, self.thumb_size, self.thumb_view = run, page_size, thumb_size, thumb_view
        self._ready = False
        self._thumbs: dict[str, bytes] = {}
        self._base = run.table_for()
        self._build_controls()
        self.viewer = JudgeViewer(run, threshold=run.threshold if threshold is None else threshold, embedded=True)
        show(self.viewer, False)
        super().__init__(children=self._layout())
        self.add_class("vx-panel")
        self.add_class("vx-quadrant-browser")
        self.threshold = run.threshold if threshold is None else threshold
        self.label = label
        self.quadrant = quadrant if quadrant is not None else first_nonempty(self.summary)
        widgets.link((self, "threshold"), (self._threshold, "value"))
        widgets.link((self, "threshold"), (self.viewer, "threshold"))
        self._class.value = label or ALL
        self._class.observe(self._on_class_pick, "value")
        self._ready = True
        self._update()

    # ------------------------------------------------------------------ data
    @property
    def table(self) -> pd.DataFrame:
        """The run table at the current threshold, for the selected class."""
        return filter_table(with_threshold(self._base, self.threshold), label=self.label)

    @property
    def summary(self) -> QuadrantSummary:
        """Quadrant counts and shares of the selected class at the current threshold."""
        return quadrant_summary(self.table, self.threshold)

    @property
    def selected_ids(self) -> list[str]:
        """Sample ids in the selected cell (run order)."""
        if self.quadrant is None:
            return []
        return list(filter_table(self.table, quadrant=self.quadrant)["id"])

    @property
    def page_ids(self) -> list[str]:
        """Sample ids shown on the current gallery page."""
        return page_items(self.selected_ids, self.page, self.page_size)

    def refresh(self) -> None:
        """Reload the run table from the store."""
        self._base = self.run.table_for()
        self._thumbs.clear()
        self.viewer.refresh()
        self._update()

    # ------------------------------------------------------------------ validation
    @tl.validate("threshold")
    def _valid_threshold(self, proposal: dict) -> float:
        return validate_threshold(proposal["value"])

    @tl.validate("label")
    def _valid_label(self, proposal: dict) -> str | None:
        label = proposal["value"]
        if label is not None and label not in self._class.options:
            raise ValueError(f"label: {label!r} is not a class of this run; known: {list(self._class.options[1:])}")
        return label

    @tl.validate("page")
    def _valid_page(self, proposal: dict) -> int:
        n = page_count(len(self.selected_ids), self.page_size) if self._ready else 1
        return max(0, min(int(proposal["value"]), n - 1))

    # ------------------------------------------------------------------ layout
    def _build_controls(self) -> None:
        self._threshold = widgets.FloatSlider(min=0, max=5, step=0.05, description="threshold",
                                              continuous_update=True)
        self._threshold.add_class("vx-threshold")
        self._class = widgets.Dropdown(options=[ALL, *class_options(self._base)], description="class")
        self._class.add_class("vx-class")
        self._cells: dict[str, widgets.Button] = {}
        for q in QUADRANTS:
            b = button("", "vx-cell", tooltip=q, layout=widgets.Layout(width="auto", height="3em"))
            b.add_class(f"vx-cell-{css_name(q)}")
            b.on_click(lambda _, q=q: self.select(q))
            self._cells[q] = b
        self._matrix_header = html_widget("vx-matrix-header")
        self.summary_label = html_widget("vx-summary")
        self._prev_page = button("◀", "vx-page-prev", tooltip="previous page")
        self._next_page = button("▶", "vx-page-next", tooltip="next page")
        self._prev_page.on_click(lambda _: setattr(self, "page", self.page - 1))
        self._next_page.on_click(lambda _: setattr(self, "page", self.page + 1))
        self.page_label = html_widget("vx-page-label")
        self._tiles = []
        for k in range(self.page_size):
            img = image_widget("vx-thumb-image", f"{self.thumb_size}px")
            img.layout.height = f"{self.thumb_size}px"
            caption = html_widget("vx-thumb-caption", layout=widgets.Layout(width=f"{self.thumb_size}px"))
            btn = button("open", "vx-thumb-open", layout=widgets.Layout(width=f"{self.thumb_size}px"))
            btn.on_click(lambda _, k=k: self._open_tile(k))
            tile = widgets.VBox([img, caption, btn], layout=widgets.Layout(margin="0 8px 10px 0"))
            tile.add_class("vx-thumb")
            self._tiles.append((tile, img, btn, caption))
        self.gallery = widgets.HBox([t[0] for t in self._tiles], layout=widgets.Layout(flex_flow="row wrap"))
        self.gallery.add_class("vx-gallery")

    def _layout(self) -> list[widgets.Widget]:
        h = lambda text: widgets.HTML(f"<b>{text}</b>")  # noqa: E731
        grid = widgets.GridBox(
            [h(""), self._matrix_header, h("Low"),
             h("Correct"), self._cells["Correct-High"], self._cells["Correct-Low"],
             h("Wrong"), self._cells["Wrong-High"], self._cells["Wrong-Low"]],
            layout=widgets.Layout(grid_template_columns="6em 12em 12em", grid_gap="4px", width="fit-content"))
        grid.add_class("vx-matrix")
        return [widgets.HBox([self._threshold, self._class]), grid, self.summary_label,
                widgets.HBox([self._prev_page, self.page_label, self._next_page]), self.gallery, self.viewer]

    # ------------------------------------------------------------------ actions
    def select(self, quadrant: str) -> None:
        """Select a cell of the matrix (its samples fill the gallery)."""
        if quadrant not in QUADRANTS:
            raise ValueError(f"quadrant: must be one of {QUADRANTS}, got {quadrant!r}")
        self.quadrant = quadrant

    def open_sample(self, sample_id: str) -> None:
        """Open one sample in the embedded viewer, paging within the selected cell and class."""
        v = self.viewer
        with v.hold_trait_notifications():
            v.score_range = v.status = None
            v.quadrant, v.label = self.quadrant, self.label
        v.show(sample_id)
        show(v, True)

    def _open_tile(self, k: int) -> None:
        ids = self.page_ids
        if k < len(ids):
            self.open_sample(ids[k])

    def _on_class_pick(self, change: dict) -> None:
        self.label = None if change["new"] == ALL else change["new"]

    @tl.observe("threshold", "label", "quadrant")
    def _on_selection(self, change: dict) -> None:
        if not self._ready:
            return
        if change["name"] == "label":
            self._class.value = self.label or ALL
        if self.page != 0:
            self.page = 0
        else:
            self._update()

    @tl.observe("page")
    def _on_page(self, change: dict) -> None:
        if self._ready:
            self._update()

    # ------------------------------------------------------------------ rendering
    def _thumb(self, sample_id: str) -> bytes:
        if sample_id not in self._thumbs:
            item = self.run.judge_input(sample_id)
            pic = {"masked": item.masked, "overlay": item.overlay, "original": item.image}[self.thumb_view]
            self._thumbs[sample_id] = encode_image(thumbnail(pic, self.thumb_size))
        return self._thumbs[sample_id]

    def _update(self) -> None:
        summary = self.summary
        self._matrix_header.value = f"<b>High (score ≥ {summary.threshold:g})</b>"
        for q, (count, _) in quadrant_cells(summary).items():
            cell = self._cells[q]
            cell.description = f"{count} · {share_text(count, summary.total)}"
            cell.button_style = "info" if q == self.quadrant else ""
            (cell.add_class if q == self.quadrant else cell.remove_class)("vx-cell-selected")
        self.summary_label.value = (
            f"{summary.total} in the matrix · {summary.unjudged} unjudged · {summary.unlabelled} unlabelled"
            f"{' · class ' + esc(self.label) if self.label else ''}")
        selected = self.selected_ids
        pages = page_count(len(selected), self.page_size)
        self._prev_page.disabled = self.page <= 0
        self._next_page.disabled = self.page >= pages - 1
        name = esc(self.quadrant) if self.quadrant else "no cell selected"
        self.page_label.value = f"<b>{name}</b>: {len(selected)} samples · page {self.page + 1} / {pages}"
        ids = self.page_ids
        for k, (tile, img, btn, caption) in enumerate(self._tiles):
            if k < len(ids):
                sid = ids[k]
                try:
                    img.value = self._thumb(sid)
                except KeyError:  # no stored image (skipped or pending)
                    img.value = blank_image()
                caption.value = self._caption_html(sid)
                btn.tooltip = f"open {sid} in the viewer"
            show(tile, k < len(ids))

    def _caption_html(self, sample_id: str) -> str:
        score, names = thumb_caption(self._base.loc[sample_id])
        return (f"<div style='line-height:1.25;white-space:normal;overflow-wrap:anywhere'>"
                f"<b class='vx-thumb-score' style='font-size:110%'>{esc(score)}</b><br>"
                f"<span class='vx-thumb-names'>{esc(names)}</span><br>"
                f"<span style='color:#666;font-size:85%'>{esc(sample_id)}</span></div>")

    def to_html(self) -> str:
        """Static rendering: the matrix, the selected cell's current page of thumbnails."""
        summary = self.summary
        figs = []
        for sid in self.page_ids:
            try:
                item = self.run.judge_input(sid)
            except KeyError:
                continue
            pic = {"masked": item.masked, "overlay": item.overlay, "original": item.image}[self.thumb_view]
            score, names = thumb_caption(self._base.loc[sid])
            figs.append(img_tag(thumbnail(pic, self.thumb_size), sid, caption=f"{score} · {names} · {sid}"))
        return (f"{matrix_html(summary, self.quadrant)}<p>{self.summary_label.value}</p>"
                f"<p>{self.page_label.value}</p><div>{''.join(figs)}</div>")

    def __repr__(self) -> str:
        return (f"QuadrantBrowser(run={str(self.run.run_dir)!r}, threshold={self.threshold:g}, label={self.label!r}, "
                f"quadrant={self.quadrant!r}, page={self.page})")
