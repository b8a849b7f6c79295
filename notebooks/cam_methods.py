# %% [markdown]
# # CAM methods (and target layers) compared on one dataset
#
# Each CAM method (and, with `layers`, each target layer) gets its own resumable run below `run_dir`, all judged by the same judge through one judgment cache; `vx.evaluate` then adds the faithfulness metrics of every run from its stored CAMs (a rerun of this notebook computes nothing). The table puts the methods side by side: mean judge score and every metric with a bootstrap CI, the **insertion − deletion AUC gap** (how much the prediction depends on the region the map ranks first, against a textured-blur baseline), the share of samples where the map beats its own inverse, and the quadrant shares. Paired bootstrap CIs of each method's difference to the best say which differences are real — and the notebook says so when the best methods cannot be told apart.
#
# Default data: shapes with a red dot on every image, explained for a model trained with the dot on 75% of its circles (`shortcut:0.75`), so predictions are right and wrong and the attention varies from on-object to on-dot. Judge: `offline:insertion-deletion` (an offline stand-in that measures attention, not a VLM). Pass `-p judge openai:gpt-4o-mini` to compare methods with a VLM judge.

# %% tags=["parameters"]
# written from vlmxplain.params.CamMethodsNotebookParams by tools/notebooks.py

# %%
from pathlib import Path

import pandas as pd

import vlmxplain as vx
from vlmxplain import params as vxp, viz
from vlmxplain.viz import figures as vxf

pd.set_option("display.precision", 3)

p = vxp.CamMethodsNotebookParams.from_namespace(globals())
tag = vxf.slug(p.data.label, p.classifier, p.judge)
figures = Path(p.figures_dir)
figures.mkdir(parents=True, exist_ok=True)

# %% [markdown]
# ## One run per method

# %%
dataset = vxp.load_data(p.data, p.limit)
clf = vxp.resolve_classifier(p.classifier, p.data, progress=False)
result = vx.compare_cams(clf, dataset, p.methods, p.layers, judge=p.judge, run_dir=p.run_dir, metrics=p.metrics,
                         alpha=p.alpha, beta=p.beta, threshold=p.threshold, sanity=p.sanity, n_boot=p.n_boot)
result.table.to_csv(Path(p.run_dir) / "cam_methods.csv")
print(f"{dataset.name}: {len(dataset)} samples, classifier {clf.name}, judge {result.judge}")
shown = ["layer", "n", "score", "score_ci_low", "score_ci_high", "gap", "gap_ci_low", "gap_ci_high",
         "deletion_auc", "insertion_auc", "energy_on_object", "win_vs_inverted", "win_vs_inverted_ci_low", "Correct-High", "Correct-Low",
         "Wrong-High", "Wrong-Low"]
result.table[[c for c in shown if c in result.table]]

# %%
# NBVAL_CHECK_OUTPUT
print(f"{len(result.table)} runs ({len(p.methods)} methods x {len(p.layers or [None])} layers); "
      f"samples per run: {sorted(set(result.table['n']))}; shares per run sum to 1: "
      f"{bool(result.quadrant_shares.sum(axis=1).round(6).eq(1).all())}")

# %% [markdown]
# ## Which differences are real
# Each method minus the best, on the same samples: mean difference with a paired bootstrap CI and the Wilcoxon signed-rank p. A CI that includes 0 means the data cannot tell the two apart.

# %%
for finding in result.findings:
    print(finding)
result.paired("gap")

# %%
result.paired("score")

# %% [markdown]
# ## Figures

# %%
vxf.show_figure(viz.plot_cam_metrics(result), figures / f"cam_methods-{tag}-metrics.png");

# %%
vxf.show_figure(viz.plot_quadrant_shares(result), figures / f"cam_methods-{tag}-quadrants.png");

# %% [markdown]
# How samples move between quadrants from one method to another (default: the best and the worst by insertion − deletion AUC).

# %%
a, b = p.pair or (result.best("gap"), result.table["gap"].idxmin())
moved = result.comparison(a, b)
print(f"{a} -> {b}: {len(moved.moved)} of {len(moved.table)} samples change quadrant")
vxf.show_figure(viz.plot_cam_transitions(result, a, b), figures / f"cam_methods-{tag}-transitions.png");
