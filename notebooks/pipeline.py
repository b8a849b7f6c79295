# %% [markdown]
# # vlmxplain pipeline
#
# Explains an image classifier on a dataset, following *A Novel Framework for Automated Explain Vision Model Using Vision-Language Models* (arXiv 2508.20227):
#
# 1. classify each image and extract a CAM saliency map (`cam`);
# 2. turn the map into a **masked CAM image** with the sigmoid `M = 1 / (1 + exp(alpha * (beta - v)))`;
# 3. ask a **judge** to score the attention 0–5 (`offline:*` judges run without keys; `openai:<model>`, `gemini:<model>` and `openai-compatible:<model>@<url>` use a VLM);
# 4. sort samples into the **quadrant matrix** Correct/Wrong × High/Low at `threshold`.
#
# Run it with papermill or `vlmxplain run pipeline -p data shapes -p judge offline:groundtruth`. Results go to `run_dir` (a resumable SQLite run store: rerunning does only what is missing) and figures to `figures_dir`.

# %% tags=["parameters"]
# written from vlmxplain.params.PipelineParams by tools/notebooks.py

# %% [markdown]
# ## Parameters
# Checked before any work: a bad value fails here with a message naming the parameter.

# %%
from pathlib import Path

import vlmxplain as vx
from vlmxplain import params as vxp
from vlmxplain.viz import figures as vxf

p = vxp.PipelineParams.from_namespace(globals())
tag = vxf.slug(p.data.label, p.cam, p.judge, f"a{p.alpha:g}", f"b{p.beta:g}")
figures = Path(p.figures_dir)
figures.mkdir(parents=True, exist_ok=True)
print("parameters:", {k: v for k, v in p.as_dict().items() if k not in ("run_dir", "figures_dir")})

# %% [markdown]
# ## Data and classifier

# %%
dataset = vxp.load_data(p.data, p.limit)
clf = vxp.resolve_classifier(p.classifier, p.data)
print(f"{dataset.name}: {len(dataset)} samples; classifier {clf.name}, target layer {clf.target_layer_name}")

# %% [markdown]
# ## Explain
# CAMs, masked images and judgments are committed to the run store as they are computed.

# %%
run = vx.explain(clf, dataset, cam=p.cam, alpha=p.alpha, beta=p.beta, judge=p.judge, run_dir=p.run_dir,
                 threshold=p.threshold, judge_options=p.judge_options(), max_cost=p.max_cost, order=p.order,
                 progress=False)
table = run.table
run.to_csv(Path(p.run_dir) / "results.csv")  # judge text is written so a spreadsheet shows it as text
table[["label", "predicted_name", "confidence", "correct", "score", "quadrant"]].head(12)

# %% [markdown]
# ## Quadrant matrix
# **Correct-Low** = right answer for the wrong reasons; **Wrong-High** = a plausible mistake; **Wrong-Low** = a failure.

# %%
quadrants = run.quadrants(p.threshold)
vxf.show_figure(vx.plot_quadrant_matrix(quadrants, title=f"{dataset.name}: {p.cam} → {p.judge}"),
                figures / f"pipeline-{tag}-quadrants.png")
quadrants.to_frame()

# %%
quadrants.per_class

# %% [markdown]
# ## Scores by correctness

# %%
vxf.show_figure(vxf.plot_score_histogram(table, p.threshold), figures / f"pipeline-{tag}-scores.png");

# %% [markdown]
# ## Masked CAM images per quadrant
# What the judge saw, for the most telling samples of each quadrant.

# %%
vxf.show_figure(vxf.plot_quadrant_gallery(run, per_quadrant=4), figures / f"pipeline-{tag}-gallery.png");

# %% [markdown]
# ## Skipped inputs and summary

# %%
print(run.last_summary)
run.skipped
