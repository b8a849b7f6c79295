# %% [markdown]
# # Alpha × beta sweep
#
# The masked CAM image depends on the sigmoid's steepness `alpha` and midpoint `beta`. Which values make the judge's scores agree best with a reference? The run is explained once; every grid cell is then judged again **from the stored CAMs** (`vx.rejudge`: no CAM is recomputed, judgments are cached and the sweep resumes if interrupted).
#
# Reference (`reference`): offline, `groundtruth` = ground-truth localisation on the shapes set (5 × the share of the raw CAM's energy on the object, independent of alpha/beta); with human scores, `run` (the Annotator's answers in the run store) or a CSV of annotations. Default data: shapes with a red dot on every image, explained for a model trained with the dot on 75% of its circles (`shortcut:0.75`), so the attention varies from on-object to on-dot. The paper's grid: alpha 15–30, beta 0.3–0.7.

# %% tags=["parameters"]
# written from vlmxplain.params.SweepNotebookParams by tools/notebooks.py

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

import vlmxplain as vx
from vlmxplain import experiments as vxe, metrics as vxm, params as vxp, viz
from vlmxplain.viz import figures as vxf

pd.set_option("display.precision", 3)

p = grid = vxp.SweepNotebookParams.from_namespace(globals())
tag = vxf.slug(p.data.label, p.classifier, p.judge, "vs", Path(grid.reference).stem, grid.metric)
figures = Path(p.figures_dir)
figures.mkdir(parents=True, exist_ok=True)

# %% [markdown]
# ## Explain once
# At the paper's default (alpha 25, beta 0.6); the sweep reuses these CAMs.

# %%
dataset = vxp.load_data(p.data, p.limit)
clf = vxp.resolve_classifier(p.classifier, p.data, progress=False)
run = vx.explain(clf, dataset, cam=p.cam, alpha=p.alpha, beta=p.beta, judge=p.judge, run_dir=p.run_dir,
                 threshold=p.threshold, progress=False, verbose=False)
print(f"{dataset.name}: {len(dataset)} samples, classifier {clf.name}")

# %% [markdown]
# ## Sweep

# %%
result = vxe.alpha_beta_sweep(run, grid.alphas, grid.betas, judge=p.judge, reference=grid.reference,
                              metric=grid.metric, classifier=clf, threshold=p.threshold)
result.table.to_csv(Path(p.run_dir) / "sweep.csv", index=False)
result.table

# %%
# NBVAL_CHECK_OUTPUT
print(f"grid: {len(grid.alphas)} alphas x {len(grid.betas)} betas = {len(result.table)} cells; "
      f"samples compared per cell: {sorted(set(result.table['n']))}")
print(f"reference: {result.reference_label}")

# %%
best = result.best
print(f"best cell for {grid.metric}: alpha = {best['alpha']:g}, beta = {best['beta']:g} "
      f"({grid.metric} = {best[grid.metric]:.3f}, n = {int(best['n'])})")
paper = result.table[(result.table["alpha"] == 25) & (result.table["beta"] == 0.6)]
if len(paper):
    print(f"paper's default alpha 25, beta 0.6: {grid.metric} = {paper[grid.metric].iloc[0]:.3f}")

# %% [markdown]
# ## Heat map

# %%
vxf.show_figure(viz.plot_sweep_heatmap(result), figures / f"sweep-{tag}-heatmap.png");

# %% [markdown]
# What the judge sees over the grid, for the sample whose score changes most across it.

# %%
spread = pd.concat([run.table_for(judge=p.judge, alpha=a, beta=b).set_index("id")["score"]
                    for a in grid.alphas for b in grid.betas], axis=1)
example = (spread.max(axis=1) - spread.min(axis=1)).sort_index().idxmax()
print(f"{example}: score from {spread.loc[example].min():.2f} to {spread.loc[example].max():.2f} over the grid")
vxf.show_figure(viz.plot_mask_grid(run, example, grid.alphas, grid.betas), figures / f"sweep-{tag}-masks.png");
