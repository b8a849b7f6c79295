"""HTML pieces shared by panels, static renderings and reports: escaping, formatting, sample
cards, the quadrant matrix table.

Text that came from a judge (a VLM's description, justification or raw response) is untrusted:
every builder here passes it through :func:`esc` (``html.escape``), so markup in it shows as text.
"""
from __future__ import annotations

import html
import math
from typing import Any, Mapping, Sequence

from ..core.quadrants import QUADRANTS, QuadrantSummary
from ..core.text import clean_text


# --------------------------------------------------------------------------- escaping & formatting
def esc(value: Any) -> str:
    """``html.escape`` of the plain text of any value (no control, bidi or zero-width characters,
    also in stores written before judge text was cleaned); None and NaN become an empty string."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return html.escape(clean_text(value), quote=True)


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


# --------------------------------------------------------------------------- HTML
def quadrant_cells(summary: QuadrantSummary) -> dict[str, tuple[int, float]]:
    """(count, share) of each of the four quadrants, in :data:`QUADRANTS` order."""
    shares = summary.shares
    return {q: (int(summary.counts[q]), float(shares[q])) for q in QUADRANTS}


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
