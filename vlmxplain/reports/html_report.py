"""``vx.report(run, "report.html")``: one self-contained HTML file for a run.

It holds the run's configuration, the quadrant matrix, the per-class table, galleries of masked
CAM images per quadrant and per class, every sample's judge texts (escaped: VLM text is
untrusted), skipped inputs and the judge's cost. Images are embedded as data URIs; the file
loads nothing from anywhere.
"""
from __future__ import annotations

import base64
import datetime as _dt
import io
from pathlib import Path
from typing import Any

import pandas as pd

from ..core.quadrants import QUADRANTS, QuadrantSummary
from ..masks.images import data_uri, thumbnail
from ..store import Run, open_run
from ..viz.figures import plot_per_class_matrix, plot_quadrant_gallery, plot_quadrant_matrix, plot_score_histogram
from ..viz.html import esc, field_rows, fmt_score, fmt_share

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{margin-bottom:.1em} h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;font-size:92%} th,td{padding:.25em .6em;border-bottom:1px solid #eee;vertical-align:top}
th{text-align:left;background:#fafafa} .vx-meta{color:#666} img.vx-fig{max-width:100%;height:auto}
.vx-samples td.vx-text{max-width:34em} .vx-note{color:#666;font-size:90%}
"""


def _figure_uri(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _figure(fig: Any, alt: str) -> str:
    return f"<img class='vx-fig' src='{_figure_uri(fig)}' alt='{esc(alt)}'>"


def _table(frame: pd.DataFrame, cls: str, float_format: str = "{:.3g}") -> str:
    """A DataFrame as an escaped HTML table (pandas escapes cell text)."""
    return frame.to_html(classes=cls, border=0, escape=True, na_rep="—",
                         float_format=lambda v: float_format.format(v))


def _over_represented(summary: QuadrantSummary, quadrant: str = "Correct-Low", fdr: float = 0.05) -> str:
    """The classes right for the wrong reasons more often than the rest (``over_represented``)."""
    test = summary.over_represented(quadrant, fdr) if summary.total else None
    among = "right" if quadrant.startswith("Correct") else "wrong"
    head = (f"<h3>Classes with more {quadrant} than the rest</h3><p class='vx-note'>{quadrant} among each class's "
            f"{among} answers; one-sided Fisher exact test per class against the other classes, Benjamini-Hochberg "
            f"false discovery rate {fdr:.0%}</p>")
    if test is None or not test["flagged"].any():
        return head + "<p>none</p>"
    return head + _table(test[test["flagged"]], "vx-over-represented")


def _sample_note(run: Run, summary: QuadrantSummary) -> str:
    """For a run not judged to the end: whether its judged samples are a random sample of it."""
    if not summary.unjudged or not summary.total or run.judged_at_random is None:
        return ""
    if run.judged_at_random:
        return (f". The {summary.total} judged samples are a random sample of the run's (shuffled judging order): "
                "the 95 % intervals estimate the whole run's shares")
    return (". Judged partly in the dataset's order: the judged samples need not be a random sample of the run, "
            "and the intervals describe them alone")


def _config(run: Run) -> str:
    cfg, view = run.config, run.view
    fields = [
        ("run directory", str(run.run_dir)), ("classifier", cfg.classifier.name),
        ("classifier spec", cfg.classifier.spec or "—"), ("weights fingerprint", cfg.classifier.fingerprint),
        ("target layer", cfg.classifier.target_layer), ("classes", len(cfg.classifier.class_names)),
        ("dataset", cfg.dataset.name), ("dataset spec", cfg.dataset.spec or "—"), ("samples", cfg.dataset.n_samples),
        ("CAM method", cfg.cam), ("judge", view.judge.judge), ("prompt version", view.judge.prompt_version),
        ("judge is a VLM", "yes" if view.judge.is_vlm else "no (an offline stand-in, not a vision-language model)"),
        ("judge input", view.judge.input_kind or "—"), ("alpha", f"{view.alpha:g}"), ("beta", f"{view.beta:g}"),
        ("threshold", f"{view.threshold:g}"),
    ]
    fields += [(f"version: {k}", v) for k, v in sorted(cfg.versions.items())]
    return field_rows(fields, "vx-config")


def _samples(run: Run, table: pd.DataFrame, max_samples: int, thumb: int) -> str:
    rows = []
    for _, row in table.head(max_samples).iterrows():
        try:
            pic = f"<img src='{data_uri(thumbnail(run.judge_input(row['id']).masked, thumb))}' alt='masked {esc(row['id'])}'>"
        except KeyError:  # skipped or pending: no stored image
            pic = ""
        error = f"<div style='color:#b00020'>{esc(row['error'])}</div>" if row.get("error") else ""
        rows.append(
            f"<tr><td>{pic}</td><td>{esc(row['id'])}</td><td>{esc(row['label'])}</td>"
            f"<td>{esc(row['predicted_name'])} ({fmt_share(row['confidence'])})</td><td>{fmt_score(row['score'])}</td>"
            f"<td>{esc(row['quadrant'])}</td><td class='vx-text'><b>Description.</b> {esc(row['description']) or '—'}"
            f"<br><b>Justification.</b> {esc(row['justification']) or '—'}{error}</td></tr>")
    more = (f"<p class='vx-note'>first {max_samples} of {len(table)} samples shown (max_samples=)</p>"
            if len(table) > max_samples else "")
    head = ("<tr><th>masked CAM image</th><th>sample</th><th>true label</th><th>prediction</th><th>score</th>"
            "<th>quadrant</th><th>judge</th></tr>")
    return f"<table class='vx-samples'>{head}{''.join(rows)}</table>{more}"


def _cost(run: Run) -> str:
    usage = run.usage()
    fields: list[tuple[str, Any]] = [("requests paid (cache hits are free)", usage["requests"]),
                                     ("input tokens", usage["input_tokens"]), ("output tokens", usage["output_tokens"])]
    try:
        estimate = run.cost()
        fields.append(("cost (USD)", "—" if estimate.usd is None else f"{estimate.usd:.4f}"))
        fields += [("assumption", a) for a in estimate.assumptions]
    except Exception as err:  # a judge without a price entry: say so, keep the report
        fields.append(("cost (USD)", f"unknown ({err})"))
    return field_rows(fields, "vx-cost")


def report_html(run: "Run | str | Path", *, title: str | None = None, per_quadrant: int = 6, max_classes: int = 20,
                per_class: int = 4, max_samples: int = 500, thumb: int = 96) -> str:
    """The report of ``run`` (a :class:`Run` or a run directory) as one HTML string."""
    run = run if isinstance(run, Run) else open_run(run)
    table = run.table
    summary = run.quadrants()
    name = title or f"vlmxplain report: {run.config.dataset.name} · {run.config.cam} → {run.view.judge.judge}"
    parts = [f"<h1>{esc(name)}</h1><p class='vx-meta'>generated {_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M UTC}"
             f" · {len(table)} samples · threshold {summary.threshold:g}</p>",
             "<h2 id='configuration'>Configuration</h2>", _config(run)]
    parts += ["<h2 id='quadrants'>Quadrant matrix</h2>",
              _figure(plot_quadrant_matrix(summary), "quadrant matrix"),
              _table(summary.to_frame(), "vx-quadrants"),
              f"<p class='vx-note'>{summary.unjudged} unjudged, {summary.unlabelled} unlabelled (not in the matrix)"
              f"{_sample_note(run, summary)}</p>",
              _figure(plot_score_histogram(table, summary.threshold), "judge scores by correctness")]
    parts += ["<h2 id='per-class'>Per class</h2>", _figure(plot_per_class_matrix(summary, max_classes),
                                                           "quadrants per class"),
              _table(summary.per_class, "vx-per-class"), _over_represented(summary)]
    parts += ["<h2 id='gallery'>Masked CAM images per quadrant</h2>",
              _figure(plot_quadrant_gallery(run, per_quadrant=per_quadrant), "gallery per quadrant")]
    classes = [c for c in pd.unique(table["label"].dropna()) if (table["label"] == c).any()]
    judged = table[table["quadrant"].isin(QUADRANTS)]
    parts.append("<h2 id='gallery-per-class'>Masked CAM images per class</h2>")
    for c in classes[:max_classes]:
        rows = judged[judged["label"] == c]
        if len(rows):
            parts += [f"<h3>{esc(c)}</h3>", _figure(plot_quadrant_gallery(
                run, per_quadrant=per_class, table=rows, title=f"class {c}: per quadrant"), f"gallery of {c}")]
    if len(classes) > max_classes:
        parts.append(f"<p class='vx-note'>{len(classes) - max_classes} more classes not shown (max_classes=)</p>")
    parts += ["<h2 id='samples'>Samples and judge texts</h2>", _samples(run, table, max_samples, thumb)]
    skipped = run.skipped
    parts += ["<h2 id='skipped'>Skipped inputs</h2>",
              _table(skipped, "vx-skipped") if len(skipped) else "<p>none</p>"]
    parts += ["<h2 id='cost'>Judge cost</h2>", _cost(run)]
    body = "\n".join(parts)
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{esc(name)}</title>"
            f"<style>{_STYLE}</style></head><body>{body}</body></html>")


def report(run: "Run | str | Path", path: str | Path = "report.html", **options: Any) -> Path:
    """Write the self-contained HTML report of ``run`` to ``path`` (folders created); returns it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(report_html(run, **options), encoding="utf-8")
    return path
