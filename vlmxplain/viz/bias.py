"""Figures of the shortcut-bias experiment: the curve over shortcut rates, a gallery of flagged
samples per model, and example images of each split."""
from __future__ import annotations

import numpy as np

from ..core.checks import check_int
from ..core.text import clean_text
from ..datasets import shapes
from ..experiments.bias import BiasParams, BiasResult, bias_splits
from ..models.shapesnet import training_spec

__all__ = ["plot_bias_curve", "plot_flagged_gallery", "plot_split_examples"]


def plot_bias_curve(result: BiasResult, ax=None, title: str | None = None):
    """Flagged share, Correct-Low share, CAM energy on the dot and accuracies against the shortcut
    rate; the control's values as dotted horizontal lines. Returns the Figure."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8.6, 4.2), layout="constrained")
    t = result.table
    sc, ctl = t[t["kind"] == "shortcut"].sort_values("rate"), t[t["kind"] == "control"]
    series = [("flagged_share", "flagged (score < threshold)", "C3", "o"),
              ("correct_low_share", "Correct-Low", "C1", "s"),
              ("energy_on_shortcut", "CAM energy on the dot", "C4", "^"),
              ("accuracy_clean", "accuracy, clean test", "C0", "D"),
              ("accuracy_dotted", "accuracy, dot on every class", "C2", "v")]
    for col, label, color, marker in series:
        ax.plot(sc["rate"], sc[col], marker=marker, color=color, label=label)
        if not ctl.empty:
            ax.axhline(float(ctl[col].iloc[0]), color=color, linestyle=":", linewidth=1)
    corr = result.correlation.loc["flagged_share"]
    r = "n/a" if not np.isfinite(corr["pearson_r"]) else f"{corr['pearson_r']:.2f}"
    ax.text(1.02, 0.0, f"r(rate, flagged) = {r}\ndotted lines: control", transform=ax.transAxes, fontsize=9,
            va="bottom", ha="left", bbox=dict(boxstyle="round", fc="white", alpha=0.85))
    ax.set(xlabel=f"shortcut rate (share of '{result.params.shortcut_class}' training images with the dot)",
           ylabel="share", ylim=(-0.03, 1.03), xlim=(-0.05, 1.05))
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)  # outside the data
    ax.set_title(title or f"Shortcut bias: judge {result.params.judge}, threshold {result.params.threshold:g}")
    return ax.figure


def _view_image(item, view: str) -> np.ndarray:
    if view == "masked":
        return np.asarray(item.masked)
    if view == "overlay":
        return np.asarray(item.overlay)
    # dimmed: the image at 25% brightness outside the visible region, so the shape and the dot stay readable
    return (np.asarray(item.image, np.float32) * (0.25 + 0.75 * item.mask[..., None])).astype(np.uint8)


def plot_flagged_gallery(result: BiasResult, per_model: int = 5, view: str = "dimmed", title: str | None = None):
    """One row per model: its flagged samples (lowest scores first), with the dot's box outlined.

    ``view``: "dimmed" (the image, darkened where the judge's mask hides it), "masked" (exactly
    what the judge saw) or "overlay" (the CAM heat map). Returns the Figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    if view not in ("dimmed", "masked", "overlay"):
        raise ValueError(f"view: must be 'dimmed', 'masked' or 'overlay', got {view!r}")
    check_int("per_model", per_model)
    t = result.table
    fig, axes = plt.subplots(len(t), per_model, figsize=(1.9 * per_model, 2.1 * len(t)), squeeze=False,
                             layout="constrained")
    boxes = {s.id: s.meta.get("shortcut_box") for s in bias_splits(result.params)[result.params.explain_split]}
    for r, model in enumerate(t.itertuples()):
        run = result.runs[model.model]
        s = result.samples[result.samples["model"] == model.model]
        flagged = s[s["quadrant"].isin(["Correct-Low", "Wrong-Low"])].sort_values(["score", "id"])
        for c in range(per_model):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(f"{model.model}\n{len(flagged)}/{len(s)} flagged", fontsize=9)
            if c >= len(flagged):
                ax.set_facecolor("#f4f4f4")
                if c == 0:
                    ax.text(0.5, 0.5, "none flagged", ha="center", va="center", fontsize=8, transform=ax.transAxes)
                continue
            row = flagged.iloc[c]
            ax.imshow(_view_image(run.judge_input(row["id"]), view))
            box = boxes.get(row["id"])
            if box is not None:
                x0, y0, x1, y1 = box
                ax.add_patch(Rectangle((x0 - 1.5, y0 - 1.5), x1 - x0 + 2, y1 - y0 + 2, fill=False, edgecolor="cyan",
                                       lw=1))
            ax.set_title(clean_text(f"{row['label']}→{row['predicted_name']} s={row['score']:.1f}"), fontsize=7,
                         parse_math=False)
    fig.suptitle(title or f"Flagged samples per model ({result.params.explain_split} split, {view} view: "
                 "bright = visible to the judge; cyan = the dot)", fontsize=10)
    return fig


def plot_split_examples(p: BiasParams, per_split: int = 4, title: str | None = None):
    """What each model sees: training images of the shortcut class at the highest rate, and the
    same test objects in the clean, dotted and moved splits (dot boxes outlined). Returns the Figure."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    top = max(p.rates)
    train = shapes(**training_spec({"classes": list(p.classes), "seed": p.seed}, rate=top,
                                   shortcut_class=p.shortcut_class, n_train=p.n_train))
    k = len(p.classes)
    shortcut_idx = p.classes.index(p.shortcut_class)
    train_rows = [train[i] for i in range(shortcut_idx, min(len(train), shortcut_idx + k * per_split), k)]
    splits = bias_splits(p)
    rows = [(f"train, '{p.shortcut_class}'\n(rate {top:g})", train_rows)]
    rows += [(name, [split[i] for i in range(min(per_split, len(split)))]) for name, split in splits.items()]
    fig, axes = plt.subplots(len(rows), per_split, figsize=(1.7 * per_split, 1.9 * len(rows)), squeeze=False,
                             layout="constrained")
    for r, (name, samples) in enumerate(rows):
        for c in range(per_split):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(name, fontsize=9)
            if c >= len(samples):
                continue
            s = samples[c]
            ax.imshow(np.asarray(s.image))
            box = s.meta.get("shortcut_box")
            if box is not None:
                x0, y0, x1, y1 = box
                ax.add_patch(Rectangle((x0 - 1.5, y0 - 1.5), x1 - x0 + 2, y1 - y0 + 2, fill=False, edgecolor="cyan",
                                       lw=1))
            ax.set_title(clean_text(s.label), fontsize=8, parse_math=False)
    fig.suptitle(title or "Shortcut-bias splits (cyan: the red dot)", fontsize=10)
    return fig
