# %% [markdown]
# # Alpha × beta sweep
#
# The masked CAM image depends on the sigmoid's steepness `alpha` and midpoint `beta`. Which values make the judge's scores agree best with a reference? The run is explained once; every grid cell is then judged again **from the stored CAMs** (`vx.rejudge`: no CAM is recomputed, judgments are cached and the sweep resumes if interrupted).
#
# Reference (`reference`): it must not be a function of what the sweep tunes. Offline, `faithfulness` = how much the classifier's prediction depends on the region the *unmasked* CAM ranks first (insertion − deletion AUC against a textured-blur baseline, `vx.evaluate`, stored in the run); with human scores, `run` (the Annotator's answers in the run store) or a CSV of annotations. (The ground-truth localisation of the map itself is refused: with the ground-truth judge it only measures how closely the sigmoid approximates the map, so its optimum sat on the grid's corner.) Each cell's agreement comes with a bootstrap CI, and the notebook says when the optimum is on the grid's edge, when every cell disagrees, or when the best cells cannot be told apart. Default data: shapes with a red dot on every image, explained for a model trained with the dot on 75% of its circles (`shortcut:0.75`), so the attention varies from on-object to on-dot. The paper's grid: alpha 15–30, beta 0.3–0.7.

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
if result.all_disagree:
    print(f"no best cell: every cell disagrees with the reference ({grid.metric} <= 0 everywhere)")
else:
    best = result.best
    m = grid.metric
    print(f"best cell for {m}: alpha = {best['alpha']:g}, beta = {best['beta']:g} "
          f"({m} = {best[m]:.3f}, 95% CI {best[m + '_ci_low']:.3f} to {best[m + '_ci_high']:.3f}, n = {int(best['n'])})")
for finding in result.findings:
    print("-", finding)
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
