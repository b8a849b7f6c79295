# %% [markdown]
# # vlmxplain quickstart
#
# A tour of the whole method on real photos, offline: an ImageNet classifier (the shipped EfficientNet-Lite0), a CAM saliency map, the **masked CAM image** a judge looks at, the judge's 0–5 score, and the **quadrant matrix** (prediction correct? × attention good?). It follows *A Novel Framework for Automated Explain Vision Model Using Vision-Language Models* (arXiv 2508.20227).
#
# The default judge, `offline:faithfulness`, is **not** a vision-language model: it re-classifies the masked image and scores how much of the confidence survives. Set `judge` to `openai:<model>`, `gemini:<model>` or `openai-compatible:<model>@<url>` (keys from the environment) to ask a VLM.
#
# Batch run: `vlmxplain run quickstart -p limit 4`.

# %% tags=["parameters"]
# written from vlmxplain.params.QuickstartParams by tools/notebooks.py

# %% [markdown]
# Every parameter is checked first: a bad value stops here with a message naming it.

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

import vlmxplain as vx
from vlmxplain import experiments as vxe, metrics as vxm, params as vxp, viz
from vlmxplain.viz import figures as vxf

pd.set_option("display.precision", 3)

p = vxp.QuickstartParams.from_namespace(globals())
tag = vxf.slug(p.data.label, p.cam, p.judge, f"a{p.alpha:g}", f"b{p.beta:g}")
figures = Path(p.figures_dir)
figures.mkdir(parents=True, exist_ok=True)

# %% [markdown]
# ## 1. A classifier and some images
# `gallery` holds real photos shipped inside installed packages (scikit-image, matplotlib, scikit-learn), with their true ImageNet labels; nothing is downloaded.

# %%
# NBVAL_CHECK_OUTPUT
dataset = vxp.load_data(p.data, p.limit)
clf = vxp.resolve_classifier(p.classifier, p.data)
print(f"{len(dataset)} images from {dataset.name!r}; classifier {clf.name} ({clf.num_classes} classes), "
      f"CAM target layer {clf.target_layer_name}")

# %% [markdown]
# ## 2. From a CAM to the masked CAM image
# The CAM is normalised to `v` in [0, 1] at image size and turned into a soft mask `M = 1 / (1 + exp(alpha * (beta - v)))`. The judge sees `image × M`: only what the model attended to stays visible. A larger `beta` keeps less of the image; a larger `alpha` makes the edge sharper.

# %%
sample = dataset[0]
cam_result = vx.compute_cams(clf, [sample], p.cam)[0]
image = vx.thumbnail(sample.image, 320)
panels = [("image", image), ("heat-map overlay", vx.overlay(image, cam_result["map"]))]
panels += [(f"masked, beta = {b:g}", vx.masked_image(image, cam_result["map"], p.alpha, b)) for b in (0.4, p.beta, 0.8)]
fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.2), layout="constrained")
for ax, (name, im) in zip(axes, panels):
    ax.imshow(im)
    ax.set_title(name, fontsize=10)
    ax.axis("off")
predicted = clf.class_names[cam_result["prediction"]]
fig.suptitle(f"{sample.id}: true '{sample.label}', predicted '{predicted}' ({cam_result['confidence']:.2f})")
vxf.show_figure(fig, figures / f"quickstart-{tag}-masks.png");

# %% [markdown]
# ### Try it live: `MaskTuner`
# Move alpha, beta, the CAM method and the explained class and watch the masked image change (the CAM is computed once per image and method; only the mask is recomputed).

# %%
# NBVAL_IGNORE_OUTPUT
vx.MaskTuner(clf, dataset, method=p.cam, alpha=p.alpha, beta=p.beta)

# %% [markdown]
# ## 3. Explain the whole dataset
# `vx.explain` classifies every image, stores its raw CAM, derives the masked image and asks the judge. Everything is committed to a SQLite run store in `run_dir` as soon as it exists: run it again and only what is missing is computed.

# %%
run = vx.explain(clf, dataset, cam=p.cam, alpha=p.alpha, beta=p.beta, judge=p.judge, run_dir=p.run_dir,
                 threshold=p.threshold, progress=False, verbose=False)
table = run.table
run.to_csv(Path(p.run_dir) / "results.csv")  # judge text is written so a spreadsheet shows it as text
table[["label", "predicted_name", "confidence", "correct", "score", "quadrant"]]

# %%
# NBVAL_CHECK_OUTPUT
print(f"{len(table)} rows in results.csv; judged: {int((table['judge_status'] == 'ok').sum())}, "
      f"skipped: {int((table['judge_status'] == 'skipped').sum())}")

# %% [markdown]
# ## 4. The quadrant matrix
# **Correct-High**: right, for visible reasons. **Correct-Low**: right, but the attention is off (a possible shortcut). **Wrong-High**: a plausible mistake. **Wrong-Low**: a failure. Change the threshold after the fact with `run.quadrants(threshold=...)`.

# %%
quadrants = run.quadrants(p.threshold)
vxf.show_figure(vx.plot_quadrant_matrix(quadrants, title=f"{dataset.name}: {p.cam} → {p.judge}"),
                figures / f"quickstart-{tag}-quadrants.png")
quadrants.to_frame()

# %% [markdown]
# The threshold can move after the fact: `run.quadrants(threshold=...)` recounts from the stored scores, and `.plot()` draws the matrix (shown once, as this cell's value).

# %%
run.quadrants(threshold=3.5).plot(title="the same run at threshold 3.5")

# %%
vxf.show_figure(vxf.plot_quadrant_gallery(run, per_quadrant=3), figures / f"quickstart-{tag}-gallery.png");

# %% [markdown]
# ## 5. Browse the verdicts
# `vx.JudgeViewer(run)` shows one sample at a time (image, masked image, overlay, the judge's description, justification and score); `vx.QuadrantBrowser(run)` is the clickable quadrant matrix with a live threshold.

# %%
# NBVAL_IGNORE_OUTPUT
vx.JudgeViewer(run)

# %%
# NBVAL_IGNORE_OUTPUT
vx.QuadrantBrowser(run)

# %% [markdown]
# ## 6. Score by hand
# `vx.Annotator(run, "your name")` shows the masked images blind (without the judge's verdict first); each answer is saved in the run store at once. The `agreement` notebook compares them with the judge.

# %%
# NBVAL_IGNORE_OUTPUT
vx.Annotator(run, "quickstart-user")

# %% [markdown]
# ## Next
# - `pipeline` — the main batch job, every parameter;
# - `shortcut_bias` — the red-dot experiment: does the judge flag a model that learned a shortcut?
# - `sweep` — which alpha/beta make the judge agree best with a reference;
# - `agreement` — judge vs human scores (correlations with bootstrap intervals, inter-annotator agreement).
