# %% [markdown]
# # Judge–human agreement
#
# How well do the judge's scores match people's? Pearson, Spearman and Kendall correlations with bootstrap confidence intervals (scipy), agreement between the annotators (Krippendorff's alpha, weighted Cohen's kappa), the share of judge explanations the annotators accept, a scatter plot with the fit, and masked-vs-overlay scores when the same VLM judge was shown both.
#
# Annotations (`annotations`): `run` = the answers given with the Annotator (`vx.Annotator(run, "name")`), saved in the run store; or a CSV with `sample_id, annotator, score[, accept]`.
#
# **Offline default: `simulated`.** Without human answers this notebook uses a clearly labelled stand-in: the `offline:groundtruth` judge is the reference rater, and `n_annotators` simulated annotators are drawn from its scores with noise (`annotator_noise`, rounded to whole points). Their names start with `simulated-` and every figure says SIMULATED. They show the machinery, **not human data**; no conclusion about human agreement may be drawn from them.
#
# `data: None` analyses the run already in `run_dir` instead of explaining a dataset.

# %% tags=["parameters"]
# written from vlmxplain.params.AgreementNotebookParams by tools/notebooks.py

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

import vlmxplain as vx
from vlmxplain import experiments as vxe, metrics as vxm, params as vxp, viz
from vlmxplain.viz import figures as vxf

pd.set_option("display.precision", 3)

# data=None analyses the run already in run_dir (its own judge, alpha and beta)
p = ap = vxp.AgreementNotebookParams.from_namespace(globals())
tag = vxf.slug(p.data.label if p.data else Path(p.run_dir).name, p.judge if p.data else "run",
               Path(ap.annotations).stem)
figures = Path(p.figures_dir)
figures.mkdir(parents=True, exist_ok=True)

# %% [markdown]
# ## The run

# %%
if p.data is not None:
    dataset = vxp.load_data(p.data, p.limit)
    clf = vxp.resolve_classifier(p.classifier, p.data, progress=False)
    run = vx.explain(clf, dataset, cam=p.cam, alpha=p.alpha, beta=p.beta, judge=p.judge, run_dir=p.run_dir,
                     threshold=p.threshold, progress=False, verbose=False)
else:
    run = vx.open_run(p.run_dir)
table = run.table
judge_scores = table.loc[table["judge_status"] == "ok"].set_index("id")["score"]
print(f"{run.judge} judged {len(judge_scores)} of {len(table)} samples in {run.run_dir.name}")

# %% [markdown]
# ## The annotations

# %%
if ap.annotations == "simulated":
    # the reference rater: the ground-truth judge on the same masked images (needs object masks)
    vx.rejudge(run, judge="offline:groundtruth", progress=False, make_current=False)  # the judge under test stays current
    gt = run.table_for(judge="offline:groundtruth")
    gt = gt.loc[gt["judge_status"] == "ok"].set_index("id")["score"]
    ann = vxe.simulate_annotators(gt, ap.n_annotators, ap.annotator_noise, seed=ap.seed, judge_scores=judge_scores)
    ann.to_csv(Path(run.run_dir) / "annotations-SIMULATED.csv", index=False)
else:
    ann = vxe.load_annotations(ap.annotations, run)
source = vxe.describe_source(ann)
simulated = bool(ann["simulated"].any())
ann.head()

# %%
# NBVAL_CHECK_OUTPUT
print(source)

# %% [markdown]
# ## Judge vs annotators
# One row per annotator and method, and against the mean annotator score (`mean_human`: for simulated annotators, the mean *simulated* score).

# %%
agreement = vxm.agreement_table(run.table, ann.drop(columns=["simulated"]), n_boot=ap.n_boot, seed=ap.seed)
agreement.insert(0, "annotations", "SIMULATED" if simulated else "human")
agreement.to_csv(Path(run.run_dir) / f"agreement-{tag}.csv", index=False)
agreement

# %%
mean_score = ann.groupby("sample_id")["score"].mean()
label = "SIMULATED annotators (not human data)" if simulated else "human annotators"
fig = viz.plot_agreement(judge_scores, mean_score, title=f"{run.judge} vs mean of {label}")
fig.axes[0].set_ylabel("mean annotator score" + (" (SIMULATED)" if simulated else ""))
vxf.show_figure(fig, figures / f"agreement-{tag}-scatter.png");

# %% [markdown]
# Reading it with the defaults: the judge under test, `offline:faithfulness`, asks whether the visible region carries the model's evidence (*faithfulness*); the reference rater behind the simulated annotators asks whether it lies on the object (*plausibility*). The default classifier learned the red-dot shortcut, so a faithful explanation of it points at the dot: the two kinds of score can disagree by design, which is why a judge must be validated against people before its scores are trusted.

# %% [markdown]
# ## Is the judge measuring attention? Validation in one call
# `vx.validate_judge(run)` puts the judge's scores next to (a) the human annotations stored in the run, (b) the faithfulness metrics of the unmasked map (insertion and deletion AUC against a textured-blur baseline, computed and stored in the run), (c) another judge on the same run, each with a bootstrap CI, and (d) the sanity check of Adebayo et al.: the judge must score each sample's true CAM above its inverted map and above the CAM of a model with randomised weights (win rates with Wilson CIs; 0.5 is chance). A part that cannot be computed says why.

# %%
validation = vx.validate_judge(run, other_judge="offline:groundtruth", n_boot=ap.n_boot, seed=ap.seed, progress=False)
validation.to_frame()

# %%
# NBVAL_IGNORE_OUTPUT
print(validation.sanity)
print("sanity check", "PASSED" if validation.sanity.passed else "FAILED",
      "(every control's win-rate CI above 0.5)")
fig = viz.plot_sanity_check(validation.sanity)
vxf.show_figure(fig, figures / f"agreement-{tag}-sanity.png");

# %% [markdown]
# Reading it with the defaults (shortcut ShapesNet, 60 dotted images): the legacy `offline:faithfulness` judge scores the true CAM above its inverse on about 70% of the images but above a randomised model's CAM on only about 45% (its CI contains chance): it fails the sanity check. `offline:insertion-deletion` wins 100% and 98% on the same run (`judge="offline:insertion-deletion"`). A judge that passes can still disagree with `offline:groundtruth` here — the model looks at the dot, so a faithful map points away from the object.

# %% [markdown]
# ## Between annotators

# %%
if ann["annotator"].nunique() >= 2:
    iaa = vxm.inter_annotator_agreement(ann.drop(columns=["simulated"]))
    display(iaa.to_frame().assign(annotations="SIMULATED" if simulated else "human"))
else:
    print(f"inter-annotator agreement needs 2 or more annotators; these annotations have "
          f"{ann['annotator'].nunique()}")

# %% [markdown]
# ## Acceptance of the judge's explanations
# The share of judged samples whose explanation the annotators accepted (Wilson interval). Simulated annotators "accept" when the judge's score is within one point of theirs.

# %%
if "accept" in ann and ann["accept"].notna().any():
    rate = vxm.acceptance_rate(ann["accept"])
    print(f"acceptance rate {rate.rate:.1%} (95% CI {rate.ci[0]:.1%}–{rate.ci[1]:.1%}) over "
          f"{int(ann['accept'].notna().sum())} answers" + (" — SIMULATED annotators" if simulated else ""))
else:
    print("no accept/reject answers in these annotations")

# %% [markdown]
# ## Masked vs overlay
# When the same VLM judge was run with `input_kind` masked and overlay on this run, their scores are compared sample by sample (mean difference with a bootstrap CI, Wilcoxon test).

# %%
views = vxm.view_scores(run)
if views is None:
    print("not available: this run has no judge that scored both the masked image and the overlay "
          "(run a VLM judge twice, with input_kind masked and overlay)")
else:
    cmp = vxm.paired_comparison(views["masked"], views["overlay"], names=("masked", "overlay"), n_boot=ap.n_boot)
    display(cmp.to_frame())

# %% [markdown]
# ## Judge reliability
# Does the judge agree with itself, with other prompts, with other judges? `vx.reliability(run)` reads every judge setting stored in the run at its alpha/beta — nothing is asked again — and reports, each with a bootstrap CI: **self-consistency** across repeated answers (`repeats=n` at temperature > 0: Krippendorff's alpha with answers as coders, the mean per-sample SD, the share of samples whose quadrant flips), the **spread across prompt templates** (the paper's rubric and the variants of the authors' three prompts), and **inter-judge agreement** (Krippendorff's alpha and Spearman's rho for every pair of settings).
#
# Offline, the three offline judges are compared on this run. They are deterministic, so repeats and templates would show nothing: those parts need a VLM judge (`-p judge openai:gpt-4o-mini`, key from the environment) and run below only then.

# %%
OFFLINE_JUDGES = ["offline:insertion-deletion", "offline:groundtruth", "offline:faithfulness"]
for other in OFFLINE_JUDGES:
    vx.rejudge(run, judge=other, progress=False, make_current=False)  # already judged: nothing is redone
judge_is_vlm = not vx.JudgeSpec.parse(run.judge).is_offline
if judge_is_vlm:
    # repeated sampling: 5 answers per sample at temperature 0.7, each cached and resumable
    vx.rejudge(run, judge=run.judge, repeats=5, judge_options={"temperature": 0.7}, progress=False, make_current=False)
    for template in vx.judges.vlm.PROMPT_TEMPLATES:  # the paper's rubric and the authors' three variants
        vx.rejudge(run, judge=run.judge, judge_options={"template": template}, progress=False, make_current=False)
else:
    print(f"repeats and prompt templates need a VLM judge (this run's judge is {run.judge}); "
          "inter-judge agreement of the offline judges only")
rel = vx.reliability(run, judges=sorted({run.judge, *OFFLINE_JUDGES}), n_boot=ap.n_boot, seed=ap.seed)
rel.to_frame().to_csv(Path(run.run_dir) / f"reliability-{tag}.csv", index=False)
rel.judges[["a", "b", "n", "alpha", "alpha_ci_low", "alpha_ci_high", "spearman", "spearman_ci_low", "spearman_ci_high"]]

# %%
if judge_is_vlm:
    display(rel.self_consistency, rel.template_spread, rel.template_means)
fig = viz.plot_reliability(rel, title=f"Judge reliability on {run.run_dir.name}")
vxf.show_figure(fig, figures / f"agreement-{tag}-reliability.png");

