"""Annotator: human scores for the agreement study, saved to the run store as they are given.

Blind by default: the annotator sees the masked image and the predicted label; the judge's
score and text appear only after the human score is saved, with accept/reject buttons for the
judge's explanation. Keyboard: type ``0``–``5``, ``a`` (accept), ``r`` (reject), ``n`` (next)
or ``b`` (back) in the command box and press Enter. Reopening resumes at the first sample the
annotator has not scored.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import pandas as pd
import traitlets as tl

from ..judges.vlm.prompts import PAPER_RUBRIC
from ..viz.html import esc, fmt_score, judge_text_html
from .logic import annotation_order, next_pending, parse_key, rubric_levels
from .common import StaticRepr, blank_image, button, encode_image, html_widget, image_widget, img_tag, show

if TYPE_CHECKING:  # pragma: no cover
    from ..store import Run

SCORES = ("0", "1", "2", "3", "4", "5")
RUBRIC_QUESTION = ("How well does the visible (attended) region show the predicted object? The judge is asked "
                   "the same question, with the same levels:")


def rubric_html(template: str = PAPER_RUBRIC.user) -> str:
    """The score levels a human annotator uses: the judge prompt's own anchored levels."""
    items = "".join(f"<li><b>{n}</b> — {esc(text)}</li>" for n, text in rubric_levels(template))
    return (f"<details open class='vx-rubric-box'><summary><b>Scoring rubric (0–5)</b></summary>"
            f"<p style='margin:.2em 0'>{esc(RUBRIC_QUESTION)}</p>"
            f"<ul style='margin:.2em 0;padding-left:1.2em;list-style:none'>{items}</ul></details>")


KEY_HELP = "type 0–5 to score, a = accept, r = reject the judge's explanation, n = next, b = back; then Enter"


class Annotator(StaticRepr, widgets.VBox):
    """Score a run's samples by hand: ``vx.Annotator(run, "alice")``.

    ``order``: ``'idx'`` (run order) or ``'random'`` (fixed by ``seed``); ``blind=False`` shows
    the judge's verdict from the start. Each answer is committed at once with
    ``run.store.put_annotation``; ``position`` (trait) is the current sample's place in the order.
    """

    panel_title = "Annotator"
    position = tl.Int(0)

    def __init__(self, run: "Run", annotator: str, *, blind: bool = True, order: str = "idx", seed: int = 0) -> None:
        if not isinstance(annotator, str) or not annotator.strip():
            raise ValueError(f"annotator: give a non-empty name, got {annotator!r}")
        self.run, self.annotator, self.blind = run, annotator.strip(), bool(blind)
        table = run.table_for()
        has_cam = run.store.cam_ids()
        self._table = table[table["id"].isin(has_cam)]
        self.order = annotation_order(list(self._table["id"]), order, seed)
        if not self.order:
            raise ValueError(f"run: {run.run_dir} has no sample with a CAM to annotate yet")
        self._syncing = False
        self._build_controls()
        super().__init__(children=[self.progress, self.image, self.prediction, self.rubric, self._scores, self._keys,
                                   widgets.HBox([self._back, self._skip]), self.judge_box,
                                   widgets.HBox([self._accept, self._reject]), self.status])
        self.add_class("vx-panel")
        self.add_class("vx-annotator")
        start = next_pending(self.order, self._scored_ids())
        self.position = len(self.order) - 1 if start is None else start
        if self.position == 0:  # no change event fired
            self._update()

    # ------------------------------------------------------------------ data
    def answers(self) -> pd.DataFrame:
        """This annotator's saved answers (sample_id, score, accept, note, created)."""
        return self.run.store.annotations(self.annotator)

    def _answer(self, sample_id: str) -> dict[str, Any] | None:
        a = self.answers()
        rows = a[a["sample_id"] == sample_id]
        return None if rows.empty else rows.iloc[-1].to_dict()

    def _scored_ids(self) -> set[str]:
        a = self.answers()
        return set(a.loc[a["score"].notna(), "sample_id"])

    @property
    def current_id(self) -> str:
        return self.order[self.position]

    @property
    def done(self) -> bool:
        """Whether every sample has a score from this annotator."""
        return self._scored_ids() >= set(self.order)

    # ------------------------------------------------------------------ layout
    def _build_controls(self) -> None:
        self.progress = html_widget("vx-progress")
        self.image = image_widget("vx-masked")
        self.prediction = html_widget("vx-prediction")
        self.rubric = html_widget("vx-rubric", rubric_html())
        self._scores = widgets.ToggleButtons(options=SCORES, value=None, description="your score",
                                             tooltips=[f"attention quality {s} / 5" for s in SCORES])
        self._scores.add_class("vx-score")
        self._scores.observe(self._on_score_button, "value")
        self._keys = widgets.Text(placeholder=KEY_HELP, continuous_update=False, description="keys",
                                  layout=widgets.Layout(width="36em"))
        self._keys.add_class("vx-keys")
        self._keys.observe(self._on_key, "value")
        self._back = button("◀ back", "vx-back")
        self._skip = button("next ▶", "vx-next")
        self._back.on_click(lambda _: self.go(-1))
        self._skip.on_click(lambda _: self.go(+1))
        self.judge_box = html_widget("vx-judge")
        self._accept = button("accept explanation", "vx-accept", button_style="success")
        self._reject = button("reject explanation", "vx-reject", button_style="danger")
        self._accept.on_click(lambda _: self.accept(True))
        self._reject.on_click(lambda _: self.accept(False))
        self.status = html_widget("vx-saved")

    # ------------------------------------------------------------------ actions
    def score(self, value: float) -> None:
        """Save the human score (0–5) of the current sample, then reveal the judge's verdict."""
        sid = self.current_id
        prev = self._answer(sid) or {}
        self.run.store.put_annotation(sid, self.annotator, float(value), note=prev.get("note") or "")
        self.status.value = f"saved: score {float(value):g} for <b>{esc(sid)}</b>"
        self._update()

    def accept(self, accepted: bool) -> None:
        """Save whether the judge's explanation is acceptable, then move to the next unscored sample."""
        sid = self.current_id
        prev = self._answer(sid)
        if self.blind and (prev is None or pd.isna(prev.get("score"))):
            self.status.value = "<span style='color:#b00020'>score the sample first (blind mode)</span>"
            return
        self.run.store.put_annotation(sid, self.annotator, None, accept=bool(accepted),
                                      note=(prev or {}).get("note") or "")
        self.status.value = f"saved: {'accepted' if accepted else 'rejected'} the explanation of <b>{esc(sid)}</b>"
        nxt = next_pending(self.order, self._scored_ids(), self.position + 1)
        if nxt is None:
            self._update()
        else:
            self.position = nxt

    def go(self, delta: int) -> None:
        """Move ``delta`` samples in the order (clamped)."""
        self.position = max(0, min(self.position + int(delta), len(self.order) - 1))

    def _on_score_button(self, change: dict) -> None:
        if not self._syncing and change["new"] is not None:
            self.score(float(change["new"]))

    def _on_key(self, change: dict) -> None:
        if self._syncing or not change["new"]:
            return
        action, value = parse_key(change["new"])
        self._syncing = True
        try:
            self._keys.value = ""
        finally:
            self._syncing = False
        if action == "score":
            self.score(value)
        elif action in ("accept", "reject"):
            self.accept(action == "accept")
        elif action in ("next", "back"):
            self.go(+1 if action == "next" else -1)
        else:
            self.status.value = f"<span style='color:#b00020'>unknown key {esc(change['new'])!s}: {KEY_HELP}</span>"

    @tl.validate("position")
    def _valid_position(self, proposal: dict) -> int:
        return max(0, min(int(proposal["value"]), len(self.order) - 1))

    @tl.observe("position")
    def _on_position(self, change: dict) -> None:
        self._update()

    # ------------------------------------------------------------------ rendering
    def _update(self) -> None:
        sid = self.current_id
        row = self._table.loc[sid]
        answer = self._answer(sid)
        scored = answer is not None and not pd.isna(answer.get("score"))
        n_scored = len(self._scored_ids() & set(self.order))
        self.progress.value = (f"<b>{esc(self.annotator)}</b> · sample {self.position + 1} / {len(self.order)} "
                               f"(<b>{esc(sid)}</b>) · {n_scored} / {len(self.order)} scored"
                               + (" · <b>all done</b>" if n_scored == len(self.order) else ""))
        try:
            self.image.value = encode_image(self.run.judge_input(sid).masked)
        except KeyError:
            self.image.value = blank_image()
        self.prediction.value = f"predicted: <b>{esc(row['predicted_name'])}</b>"
        self._syncing = True
        try:
            given = float(answer["score"]) if scored else None
            self._scores.value = str(int(given)) if given is not None and given.is_integer() else None
        finally:
            self._syncing = False
        reveal = scored or not self.blind
        show(self.judge_box, reveal)
        show(self._accept, reveal)
        show(self._reject, reveal)
        if reveal:
            verdict = ""
            if answer is not None and answer.get("accept") is not None:
                verdict = f" · you {'accepted' if answer['accept'] else 'rejected'} it"
            self.judge_box.value = (f"<div><b>Judge</b> {esc(row['judge'])}: score <b>{fmt_score(row['score'])}</b>"
                                    f"{verdict}</div>{judge_text_html(row.to_dict())}")
        else:
            self.judge_box.value = ""

    def to_html(self) -> str:
        """Static rendering: progress and the current sample (judge text only when revealed)."""
        sid = self.current_id
        try:
            pic = img_tag(self.run.judge_input(sid).masked, f"masked image of {sid}", 400)
        except KeyError:
            pic = ""
        judge = self.judge_box.value if self.judge_box.layout.display != "none" else ""
        return f"<p>{self.progress.value}</p>{pic}<p>{self.prediction.value}</p>{self.rubric.value}{judge}"

    def __repr__(self) -> str:
        return (f"Annotator(run={str(self.run.run_dir)!r}, annotator={self.annotator!r}, blind={self.blind}, "
                f"position={self.position}, sample={self.current_id!r})")
