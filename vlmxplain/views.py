"""Plain logic behind the widget panels: filtering and paging a run table, snippets, escaped HTML.

Everything here is a pure function of its arguments (no widgets, no I/O), so each panel stays a
thin view and this logic is tested on its own. Text that came from a judge (a VLM's
description, justification or raw response) is untrusted: every HTML builder here passes it
through :func:`esc` (``html.escape``), so markup in it shows as text.
"""
from __future__ import annotations

import html
import math
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from PIL import Image

from .analysis.quadrants import QUADRANTS, UNJUDGED, UNLABELLED, QuadrantSummary, assign_quadrants, validate_threshold
from .masks import apply_mask, sigmoid_mask

#: Values of the quadrant column a table can hold (the matrix's four and the rows outside it).
QUADRANT_VALUES = (*QUADRANTS, UNJUDGED, UNLABELLED, "Pending", "Skipped")
JUDGE_STATUSES = ("ok", "failed", "pending", "skipped")
TUNER_VIEWS = ("original", "overlay", "mask", "masked", "side by side")
SCORE_MIN, SCORE_MAX = 0.0, 5.0


# --------------------------------------------------------------------------- escaping & formatting
def esc(value: Any) -> str:
    """``html.escape`` for any value; None and NaN become an empty string."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return html.escape(str(value), quote=True)


def css_name(text: str) -> str:
    """A CSS-class-safe slug: ``'Correct-High'`` → ``'correct-high'``."""
    return "".join(c if c.isalnum() else "-" for c in str(text).lower()).strip("-")


def _fmt_number(value: Any, spec: str) -> str:
    """``format(float(value), spec)``, or an em dash for a missing or non-numeric value."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return "—"
    return "—" if math.isnan(x) else format(x, spec)


def fmt_score(score: Any) -> str:
    """A judge score as shown to people: ``'3.2 / 5'``, or an em dash when there is none."""
    text = _fmt_number(score, ".1f")
    return text if text == "—" else f"{text} / 5"


def fmt_share(p: Any) -> str:
    """A probability or share as a percentage (``'77.3%'``), an em dash when missing."""
    return _fmt_number(p, ".1%")


# --------------------------------------------------------------------------- filtering & paging
def validate_score_range(score_range: Sequence[float] | None) -> tuple[float, float] | None:
    """``None`` (no filter) or a (low, high) pair inside [0, 5] with low ≤ high."""
    if score_range is None:
        return None
    try:
        lo, hi = (float(x) for x in score_range)
    except (TypeError, ValueError):
        raise ValueError(f"score_range: give (low, high) within 0..5, got {score_range!r}") from None
    if not (SCORE_MIN <= lo <= hi <= SCORE_MAX):
        raise ValueError(f"score_range: give (low, high) with 0 <= low <= high <= 5, got {score_range!r}")
    return lo, hi


def filter_table(
    table: pd.DataFrame, *, quadrant: str | None = None, label: str | None = None,
    score_range: Sequence[float] | None = None, status: str | None = None, by: str = "label",
) -> pd.DataFrame:
    """Rows of a run table matching every given filter (``None`` = no filter).

    ``quadrant``: a value of the ``quadrant`` column (:data:`QUADRANT_VALUES`); ``label``: a class,
    matched against column ``by`` (the true label by default); ``score_range``: scores within
    [low, high] (rows without a score drop out); ``status``: a judge status.
    """
    mask = pd.Series(True, index=table.index)
    if quadrant is not None:
        if quadrant not in QUADRANT_VALUES:
            raise ValueError(f"quadrant: must be one of {QUADRANT_VALUES}, got {quadrant!r}")
        mask &= table["quadrant"] == quadrant
    if label is not None:
        if by not in table:
            raise ValueError(f"by: the table has no column {by!r}")
        mask &= table[by].astype(str) == str(label)
    rng = validate_score_range(score_range)
    if rng is not None:
        score = pd.to_numeric(table["score"], errors="coerce")
        mask &= score.between(rng[0], rng[1]) & score.notna()
    if status is not None:
        if status not in JUDGE_STATUSES:
            raise ValueError(f"status: must be one of {JUDGE_STATUSES}, got {status!r}")
        mask &= table["judge_status"] == status
    return table[mask]


def with_threshold(table: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """A copy of a run table with its ``quadrant`` column recomputed for another threshold
    (pending and skipped rows keep their status as their quadrant, as in ``Run.table_for``)."""
    t = validate_threshold(threshold)
    out = table.copy()
    out["quadrant"] = assign_quadrants(out["correct"], out["score"], t)
    outside = out["judge_status"].isin(["skipped", "pending"])
    out.loc[outside, "quadrant"] = out.loc[outside, "judge_status"].str.capitalize()
    return out


def class_options(table: pd.DataFrame, by: str = "label") -> list[str]:
    """The sorted distinct classes of column ``by`` (empty labels left out)."""
    if by not in table:
        raise ValueError(f"by: the table has no column {by!r}")
    return sorted({str(v) for v in table[by].dropna() if str(v)})


def page_count(n_items: int, page_size: int) -> int:
    """Number of pages for ``n_items`` (at least 1, so an empty gallery has one empty page)."""
    if page_size < 1:
        raise ValueError(f"page_size: must be >= 1, got {page_size}")
    return max(1, math.ceil(n_items / page_size))


def page_items(items: Sequence[Any], page: int, page_size: int) -> list[Any]:
    """The items on (0-based) ``page``; the page number is clamped into range."""
    page = clamp(page, page_count(len(items), page_size))
    return list(items[page * page_size:(page + 1) * page_size])


def clamp(i: int, n: int) -> int:
    """``i`` clamped into ``0..n-1`` (0 when ``n`` is 0)."""
    return 0 if n <= 0 else max(0, min(int(i), n - 1))


def quadrant_cells(summary: QuadrantSummary) -> dict[str, tuple[int, float]]:
    """(count, share) of each of the four quadrants, in :data:`QUADRANTS` order."""
    shares = summary.shares
    return {q: (int(summary.counts[q]), float(shares[q])) for q in QUADRANTS}


def first_nonempty(summary: QuadrantSummary) -> str | None:
    """The first quadrant with samples (``None`` when all four are empty)."""
    return next((q for q in QUADRANTS if summary.counts[q] > 0), None)


# --------------------------------------------------------------------------- annotation order
def annotation_order(ids: Sequence[str], order: str = "idx", seed: int = 0) -> list[str]:
    """The order samples are put to an annotator: ``'idx'`` (run order) or ``'random'``
    (a shuffle fixed by ``seed``, so a resumed session sees the same order)."""
    if order == "idx":
        return list(ids)
    if order == "random":
        rng = np.random.default_rng(seed)
        return [ids[i] for i in rng.permutation(len(ids))]
    raise ValueError(f"order: must be 'idx' or 'random', got {order!r}")


def next_pending(order: Sequence[str], done: set[str] | Sequence[str], start: int = 0) -> int | None:
    """Position of the first id at or after ``start`` that is not in ``done``, wrapping
    around once; ``None`` when every id is done."""
    done = set(done)
    n = len(order)
    for k in range(n):
        i = (start + k) % n
        if order[i] not in done:
            return i
    return None


def parse_key(text: str) -> tuple[str, float | None]:
    """An annotator's typed command: a score 0–5 → ``('score', s)``; ``a``/``y`` → accept;
    ``r``/``x`` → reject; ``n`` → next; ``b``/``p`` → back. Anything else → ``('unknown', None)``."""
    t = str(text).strip().lower()
    words = {"a": "accept", "y": "accept", "r": "reject", "x": "reject", "n": "next", "b": "back", "p": "back"}
    if t in words:
        return words[t], None
    try:
        s = float(t)
    except ValueError:
        return "unknown", None
    if math.isfinite(s) and SCORE_MIN <= s <= SCORE_MAX:
        return "score", s
    return "unknown", None


# --------------------------------------------------------------------------- MaskTuner
def render_view(image: np.ndarray, saliency: np.ndarray, heat: np.ndarray, alpha: float, beta: float,
                view: str) -> tuple[Image.Image, float]:
    """One MaskTuner frame from cached arrays: ``image`` (H×W×3 float32), the saliency ``v``
    (H×W in [0, 1]) and the overlay ``heat`` (H×W×3 uint8). Returns (frame, kept share)."""
    if view not in TUNER_VIEWS:
        raise ValueError(f"view: must be one of {TUNER_VIEWS}, got {view!r}")
    mask = sigmoid_mask(saliency, alpha, beta)
    kept = float(mask.mean())
    if view == "original":
        return Image.fromarray(np.clip(image + 0.5, 0, 255).astype(np.uint8)), kept
    if view == "overlay":
        return Image.fromarray(heat), kept
    if view == "mask":
        return Image.fromarray((mask * 255.0 + 0.5).astype(np.uint8)).convert("RGB"), kept
    masked = apply_mask(image, mask)
    if view == "masked":
        return masked, kept
    gap = np.full((image.shape[0], 4, 3), 255, np.uint8)
    frame = np.concatenate([np.clip(image + 0.5, 0, 255).astype(np.uint8), gap, heat, gap, np.asarray(masked)], 1)
    return Image.fromarray(frame), kept


def explain_snippet(*, cam: str, alpha: float, beta: float, judge: str | None = None,
                    classifier: str | None = None, target: int | None = None) -> str:
    """The current MaskTuner parameters as copyable ``explain`` and papermill/CLI code."""
    judge_arg = f", judge={judge!r}" if judge else ""
    clf = repr(classifier) if classifier else "clf"
    lines = [
        "import vlmxplain as vx",
        f"run = vx.explain({clf}, data, cam={cam!r}, "
        f"alpha={float(alpha):g}, beta={float(beta):g}{judge_arg})",
        "# batch: vlmxplain run pipeline " + f"-p cam {cam} -p alpha {float(alpha):g} -p beta {float(beta):g}"
        + (f" -p judge {judge}" if judge else ""),
    ]
    if target is not None:
        lines.append(f"# explained class: {int(target)} (explain() explains the predicted class)")
    return "\n".join(lines)


# --------------------------------------------------------------------------- HTML
def field_rows(fields: Sequence[tuple[str, Any]], cls: str = "vx-fields") -> str:
    """A two-column table of (name, value) pairs, both escaped."""
    rows = "".join(f"<tr><th style='text-align:left;padding-right:1em'>{esc(k)}</th><td>{esc(v)}</td></tr>"
                   for k, v in fields)
    return f"<table class='{cls}'>{rows}</table>"


def sample_fields(row: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The facts of one run-table row, in reading order, formatted for people."""
    correct = row.get("correct")
    correct_text = "—" if correct is None or (isinstance(correct, float) and math.isnan(correct)) else (
        "yes" if bool(correct) else "no")
    tokens = f"{_int(row.get('input_tokens'))} in / {_int(row.get('output_tokens'))} out"
    if row.get("cached"):
        tokens += " (cached)"
    targets = row.get("target_names")
    return [
        ("sample", f"{row.get('id')} (#{_int(row.get('idx'))})"),
        ("label", row.get("label") or "—"),
        ("accepted classes", ", ".join(targets) if isinstance(targets, (list, tuple)) and targets else "—"),
        ("prediction", row.get("predicted_name") or "—"),
        ("confidence", fmt_share(row.get("confidence"))),
        ("correct", correct_text),
        ("score", fmt_score(row.get("score"))),
        ("quadrant", row.get("quadrant") or "—"),
        ("judge", row.get("judge") or "—"),
        ("status", row.get("judge_status") or "—"),
        ("tokens", tokens),
    ]


def _int(value: Any) -> int:
    try:
        return 0 if value is None or math.isnan(float(value)) else int(value)
    except (TypeError, ValueError):
        return 0


def judge_text_html(row: Mapping[str, Any]) -> str:
    """The judge's description, justification and error, escaped (VLM text is untrusted)."""
    parts = [
        f"<div class='vx-description'><b>Description.</b> {esc(row.get('description')) or '—'}</div>",
        f"<div class='vx-justification'><b>Justification.</b> {esc(row.get('justification')) or '—'}</div>",
    ]
    if row.get("error"):
        parts.append(f"<div class='vx-error' style='color:#b00020'><b>Error.</b> {esc(row.get('error'))}</div>")
    return "".join(parts)


def sample_card_html(row: Mapping[str, Any]) -> str:
    """Facts and judge text of one sample as HTML; every value is escaped."""
    return f"<div class='vx-card-body'>{field_rows(sample_fields(row))}{judge_text_html(row)}</div>"


def raw_response_html(raw: Any) -> str:
    """A judge's raw response in a ``<pre>`` block, escaped."""
    text = esc(raw) or "(no raw response stored)"
    return f"<pre class='vx-raw-text' style='white-space:pre-wrap;max-height:20em;overflow:auto'>{text}</pre>"


def matrix_html(summary: QuadrantSummary, selected: str | None = None) -> str:
    """The 2×2 quadrant matrix as a static HTML table (counts and shares; selected cell bold)."""
    cells = quadrant_cells(summary)

    def td(q: str) -> str:
        count, share = cells[q]
        weight = "font-weight:bold;outline:2px solid #1976d2;" if q == selected else ""
        return f"<td style='padding:.4em 1em;border:1px solid #ccc;{weight}'>{count} · {share:.0%}</td>"

    return (f"<table class='vx-matrix'><tr><th></th><th>High (score ≥ {summary.threshold:g})</th><th>Low</th></tr>"
            f"<tr><th>Correct</th>{td('Correct-High')}{td('Correct-Low')}</tr>"
            f"<tr><th>Wrong</th>{td('Wrong-High')}{td('Wrong-Low')}</tr></table>")
