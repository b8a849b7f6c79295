"""Plain logic behind the widget panels: filtering and paging a run table, the annotation order,
typed commands, MaskTuner frames and snippets.

Everything here is a pure function of its arguments (no widgets, no I/O), so each panel stays a
thin view and this logic is tested on its own.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import pandas as pd
from PIL import Image

from ..core.checks import validate_threshold
from ..core.defaults import SCORE_MAX, SCORE_MIN
from ..core.quadrants import QUADRANT_VALUES, QUADRANTS, QuadrantSummary, quadrant_column
from ..masks.images import side_by_side
from ..masks.saliency import apply_mask, sigmoid_mask

JUDGE_STATUSES = ("ok", "failed", "pending", "skipped")
TUNER_VIEWS = ("original", "overlay", "mask", "masked", "side by side")
#: The MaskTuner's "side by side" panels, left to right.
SIDE_BY_SIDE = ("original", "heat-map overlay", "masked CAM image (what the judge sees)")


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
    out = table.copy()
    out["quadrant"] = quadrant_column(out, validate_threshold(threshold))
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
    original = Image.fromarray(np.clip(image + 0.5, 0, 255).astype(np.uint8))
    return side_by_side(original, Image.fromarray(heat), masked, gap=4), kept


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


def view_captions(view: str, alpha: float, beta: float) -> list[str]:
    """The caption of each panel of a MaskTuner frame, left to right."""
    if view not in TUNER_VIEWS:
        raise ValueError(f"view: must be one of {TUNER_VIEWS}, got {view!r}")
    params = f"alpha {float(alpha):g}, beta {float(beta):g}"
    if view == "side by side":
        return [SIDE_BY_SIDE[0], SIDE_BY_SIDE[1], f"{SIDE_BY_SIDE[2]}, {params}"]
    return {"original": ["original"], "overlay": ["heat-map overlay"],
            "mask": [f"sigmoid mask M (white = kept), {params}"],
            "masked": [f"masked CAM image (what the judge sees), {params}"]}[view]


def target_options(class_names: Sequence[str], prediction: int, confidence: float,
                   top: Sequence[tuple[int, float]], target: int | None, predicted_value: int = -1
                   ) -> list[tuple[str, int]]:
    """The MaskTuner's "explain" choices: the predicted class once (first), then the other top
    classes with their probabilities, then a chosen class outside the top ones."""
    options = [(f"predicted: {class_names[prediction]} ({confidence:.1%})", predicted_value)]
    options += [(f"{class_names[c]} ({p:.1%})", int(c)) for c, p in top if int(c) != int(prediction)]
    if target is not None and target != prediction and target not in [c for c, _ in top]:
        options.append((str(class_names[target]), int(target)))
    return options


def rubric_levels(template: str) -> list[tuple[int, str]]:
    """The anchored score levels of a judge prompt (lines ``"<0-5> - <text>"``), in order."""
    import re

    return [(int(m.group(1)), m.group(2).strip()) for m in re.finditer(r"^([0-5]) - (.+)$", template, flags=re.M)]


def thumb_caption(row: Any) -> tuple[str, str]:
    """A gallery tile's caption for one run-table row: (``"score 3.2"``, ``"true → predicted"``),
    the first synonym of each name, never cut (the tile wraps it)."""
    def first(name: Any) -> str:
        return "?" if name is None or (isinstance(name, float) and math.isnan(name)) else str(name).split(",")[0]

    score = pd.to_numeric(pd.Series([row.get("score")]), errors="coerce").iloc[0]
    score_text = "not judged" if pd.isna(score) else f"score {float(score):.1f}"
    return score_text, f"{first(row.get('label'))} → {first(row.get('predicted_name'))}"


def score_range_text(value: Sequence[float]) -> str:
    """The JudgeViewer's score filter as text: ``"0.0 – 5.0"``."""
    lo, hi = (float(v) for v in value)
    return f"{lo:.1f} – {hi:.1f}"
