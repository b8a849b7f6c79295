# %% [markdown]
# # Shortcut-bias detection: the red-dot experiment
#
# Can the explanations reveal a model that is right for the wrong reason? Following the paper, a small CNN is trained on synthetic shapes where a **red dot** is planted on a share (`rates`) of one class's training images. A model that learns the dot as a shortcut still scores well when the dot is where it learned it, but its CAM sits on the dot instead of the shape.
#
# - one model per shortcut rate, plus a **control** trained with the dot on every class half the time (the dot is there, but says nothing about the label);
# - each model is evaluated on paired test splits of the same objects: **clean** (no dot), **dotted** (the dot on every class, at its training place) and **moved** (on every class, at `moved_position`);
# - the pipeline explains each model on `explain_split` and the judge scores the attention; a sample is **flagged** when its score is below `threshold`.
#
# The default judge `offline:groundtruth` is a computed stand-in (the share of the visible region that lies on the object, from the exact object masks), not a VLM. The paper's claim is checked by the correlation between shortcut rate and flagged share (target |r| > 0.5). Models train once (≈10 s each on 2 CPU cores) and are cached. The full curve: `vlmxplain run shortcut_bias -p rates "[0, 0.25, 0.5, 0.75, 1]"`.

# %% tags=["parameters"]
# written from vlmxplain.experiments.bias.BiasParams by tools/notebooks.py

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

import vlmxplain as vx
from vlmxplain import experiments as vxe, metrics as vxm, params as vxp, viz
from vlmxplain.viz import figures as vxf

pd.set_option("display.precision", 3)

p = vxe.BiasParams.from_namespace(globals())
tag = vxf.slug("r" + "-".join(f"{r:g}" for r in p.rates), p.shortcut_class, p.explain_split, p.judge,
               f"t{p.threshold:g}")
figures = Path(p.figures_dir)
figures.mkdir(parents=True, exist_ok=True)

# %% [markdown]
# ## The data
# The same objects appear in every test split; only the dot changes.

# %%
vxf.show_figure(viz.plot_split_examples(p), figures / f"shortcut_bias-{tag}-splits.png");

# %% [markdown]
# ## Train the models
# Each model is trained once and then loaded from the model cache (`$VLMXPLAIN_MODELS`).

# %%
# NBVAL_IGNORE_OUTPUT
import time
t0 = time.perf_counter()
models = vxe.train_bias_models(p)
print(f"{len(models)} models ready in {time.perf_counter() - t0:.1f} s")

# %% [markdown]
# ## Run the experiment
# For each model: accuracy on each split, then `explain` on the chosen split with the judge, and the share of CAM energy on the dot (from the raw CAM upsampled to the image).

# %%
result = vxe.run_bias_experiment(p, models=models)
result.table.to_csv(Path(p.run_dir) / "bias_results.csv", index=False)
result.samples.to_csv(Path(p.run_dir) / "bias_samples.csv", index=False)
result.table.drop(columns=["run_dir"])

# %% [markdown]
# Columns: `accuracy_*` per split; `flagged_share` = share of judged samples scored below the threshold (Correct-Low + Wrong-Low); `wrong_share_of_flagged` = how much of the flagged share is plain wrong predictions (Wrong-Low); `correct_low_share` = right for the wrong reason, over all judged samples, and `rfwr_share_of_correct` = the same among the *correct* predictions only; `energy_on_shortcut` / `energy_on_object` = share of CAM energy in the dot's box / on the object; `peak_on_shortcut` = share of images whose CAM peaks on the dot; `predicted_shortcut_class` = share predicted as the shortcut class.

# %%
result.correlation

# %% [markdown]
# ## The claims

# %%
# NBVAL_CHECK_OUTPUT
r = result.r
print(f"models: {', '.join(result.table['model'])}")
if p.control:
    print(f"control reaches >= 95% on the clean split: {result.control_accuracy >= 0.95}")
if len(p.rates) >= 3:
    print(f"|r(shortcut rate, flagged share)| > 0.5: {bool(abs(r) > 0.5)}")

# %%
print(f"Pearson r(shortcut rate, flagged share) = {r:.2f} over {len(p.rates)} rates; "
      f"control accuracy {result.control_accuracy}")

# %% [markdown]
# ## What the flagged share counts
# A flagged share that rises with the rate can simply count wrong predictions (a shortcut model calls dotted squares "circle"). Read it beside the accuracy on the dotted and the moved-dot split, and the right-for-the-wrong-reason share among the correct predictions, which is what the judge adds. For a CI on r, repeat over seeds: `vxe.bias_over_seeds(p, seeds=(0, 1, 2))` (new models and test objects per seed; a t-interval on each r).

# %%
result.table[["model", "rate", "accuracy_dotted", "accuracy_moved", "flagged_share", "wrong_share_of_flagged",
              "n_correct", "rfwr_share_of_correct"]]

# %% [markdown]
# ## Figures
# The curve: as the shortcut rate grows the judge flags more samples and the CAM energy moves onto the dot, while the clean-split accuracy hides most of it until the highest rates. Dotted lines: the control.

# %%
vxf.show_figure(viz.plot_bias_curve(result), figures / f"shortcut_bias-{tag}-curve.png");

# %% [markdown]
# The flagged samples of each model: bright = what the judge's mask leaves visible; the dot outlined in cyan.

# %%
vxf.show_figure(viz.plot_flagged_gallery(result, per_model=5), figures / f"shortcut_bias-{tag}-flagged.png");
