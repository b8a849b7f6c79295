"""Write notebooks/{quickstart,shortcut_bias,sweep,agreement}.ipynb (cells kept here as reviewable code).

    python tools/make_notebooks.py            # write the four notebooks (checked outputs of
                                              # unchanged cells are kept from the current files)
    python tools/make_notebooks.py --execute  # also run them once (papermill, in a scratch folder)
                                              # and keep the outputs of the `# NBVAL_CHECK_OUTPUT`
                                              # cells, which `pytest --nbval-lax notebooks/` compares

Conventions (as in tools/make_pipeline_notebook.py): one `parameters`-tagged cell with
type-annotated values (no `=` or quotes in trailing comments: papermill parses them; optional
values are annotated "Optional[int]" as a string, which papermill's parser reads and Python
does not evaluate), the
parameters validated by package functions in the next cell, figures saved under `figures_dir`
named by notebook and parameters, a results CSV beside the run. Widget and timing cells are
marked `# NBVAL_IGNORE_OUTPUT`.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import nbformat as nbf

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
md, code = nbf.v4.new_markdown_cell, nbf.v4.new_code_cell
CHECK = "# NBVAL_CHECK_OUTPUT"
IGNORE = "# NBVAL_IGNORE_OUTPUT"


def params_cell(source: str):
    return code(source.strip(), metadata={"tags": ["parameters"]})


SETUP = """import matplotlib
matplotlib.use("Agg")
import re
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Image, display

import vlmxplain as vx
from vlmxplain import analysis as vxa, params as vxp, plots

pd.set_option("display.precision", 3)


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", str(text)).strip("-")


def show_figure(fig, name: str) -> Path:
    path = plots.save_figure(fig, figures / name)
    display(Image(filename=str(path)))
    return path
"""

# ----------------------------------------------------------------------------------------- quickstart
QUICKSTART = [
    md("# vlmxplain quickstart\n\n"
       "A tour of the whole method on real photos, offline: an ImageNet classifier (the shipped "
       "EfficientNet-Lite0), a CAM saliency map, the **masked CAM image** a judge looks at, the judge's 0–5 "
       "score, and the **quadrant matrix** (prediction correct? × attention good?). It follows *A Novel "
       "Framework for Automated Explain Vision Model Using Vision-Language Models* (arXiv 2508.20227).\n\n"
       "The default judge, `offline:faithfulness`, is **not** a vision-language model: it re-classifies the "
       "masked image and scores how much of the confidence survives. Set `judge` to `openai:<model>`, "
       "`gemini:<model>` or `openai-compatible:<model>@<url>` (keys from the environment) to ask a VLM.\n\n"
       "Batch run: `vlmxplain run quickstart -p limit 4`."),
    params_cell('''
data: str = "gallery"  # gallery, shapes, a class-folder path, or a CSV file
classifier: str = "auto"  # auto picks EfficientNet-Lite0 for photos
cam: str = "gradcam"
alpha: float = 25.0  # sigmoid steepness (paper: 25)
beta: float = 0.6  # sigmoid midpoint (paper: 0.4-0.7, best 0.6)
judge: str = "offline:faithfulness"
threshold: float = 2.5  # a score at or above it counts as High
limit: "Optional[int]" = None  # only the first N samples
run_dir: str = "runs/quickstart"
figures_dir: str = "figures"
'''),
    md("Every parameter is checked first: a bad value stops here with a message naming it."),
    code(SETUP + """
p = vxp.validate_params(data=data, classifier=classifier, cam=cam, alpha=alpha, beta=beta, judge=judge,
                        threshold=threshold, limit=limit, run_dir=run_dir, figures_dir=figures_dir)
tag = slug(f"{Path(p.data).name}-{p.cam}-{p.judge}-a{p.alpha:g}-b{p.beta:g}")
figures = Path(p.figures_dir)
figures.mkdir(parents=True, exist_ok=True)"""),
    md("## 1. A classifier and some images\n"
       "`gallery` holds real photos shipped inside installed packages (scikit-image, matplotlib, "
       "scikit-learn), with their true ImageNet labels; nothing is downloaded."),
    code(CHECK + """
dataset = vxp.load_data(p.data, p.limit)
clf = vxp.resolve_classifier(p.classifier, p.data)
print(f"{len(dataset)} images from {dataset.name!r}; classifier {clf.name} ({clf.num_classes} classes), "
      f"CAM target layer {clf.target_layer_name}")"""),
    md("## 2. From a CAM to the masked CAM image\n"
       "The CAM is normalised to `v` in [0, 1] at image size and turned into a soft mask "
       "`M = 1 / (1 + exp(alpha * (beta - v)))`. The judge sees `image × M`: only what the model attended "
       "to stays visible. A larger `beta` keeps less of the image; a larger `alpha` makes the edge sharper."),
    code("""sample = dataset[0]
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
show_figure(fig, f"quickstart-{tag}-masks.png");"""),
    md("### Try it live: `MaskTuner`\n"
       "Move alpha, beta, the CAM method and the explained class and watch the masked image change (the CAM is "
       "computed once per image and method; only the mask is recomputed)."),
    code(IGNORE + """
vx.MaskTuner(clf, dataset, method=p.cam, alpha=p.alpha, beta=p.beta)"""),
    md("## 3. Explain the whole dataset\n"
       "`vx.explain` classifies every image, stores its raw CAM, derives the masked image and asks the judge. "
       "Everything is committed to a SQLite run store in `run_dir` as soon as it exists: run it again and only "
       "what is missing is computed."),
    code("""run = vx.explain(clf, dataset, cam=p.cam, alpha=p.alpha, beta=p.beta, judge=p.judge, run_dir=p.run_dir,
                 threshold=p.threshold, progress=False, verbose=False)
table = run.table
table.to_csv(Path(p.run_dir) / "results.csv", index=False)
table[["label", "predicted_name", "confidence", "correct", "score", "quadrant"]]"""),
    code(CHECK + """
print(f"{len(table)} rows in results.csv; judged: {int((table['judge_status'] == 'ok').sum())}, "
      f"skipped: {int((table['judge_status'] == 'skipped').sum())}")"""),
    md("## 4. The quadrant matrix\n"
       "**Correct-High**: right, for visible reasons. **Correct-Low**: right, but the attention is off (a possible "
       "shortcut). **Wrong-High**: a plausible mistake. **Wrong-Low**: a failure. Change the threshold after the "
       "fact with `run.quadrants(threshold=...)`."),
    code("""quadrants = run.quadrants(p.threshold)
show_figure(quadrants.plot(title=f"{dataset.name}: {p.cam} → {p.judge}"), f"quickstart-{tag}-quadrants.png")
quadrants.to_frame()"""),
    code("""show_figure(plots.plot_quadrant_gallery(run, per_quadrant=3), f"quickstart-{tag}-gallery.png");"""),
    md("## 5. Browse the verdicts\n"
       "`run.viewer()` shows one sample at a time (image, masked image, overlay, the judge's description, "
       "justification and score); `run.browser()` is the clickable quadrant matrix with a live threshold."),
    code(IGNORE + """
run.viewer()"""),
    code(IGNORE + """
run.browser()"""),
    md("## 6. Score by hand\n"
       "`run.annotate(\"your name\")` shows the masked images blind (without the judge's verdict first); each "
       "answer is saved in the run store at once. The `agreement` notebook compares them with the judge."),
    code(IGNORE + """
run.annotate("quickstart-user")"""),
    md("## Next\n"
       "- `pipeline` — the main batch job, every parameter;\n"
       "- `shortcut_bias` — the red-dot experiment: does the judge flag a model that learned a shortcut?\n"
       "- `sweep` — which alpha/beta make the judge agree best with a reference;\n"
       "- `agreement` — judge vs human scores (correlations with bootstrap intervals, inter-annotator agreement)."),
]

# ----------------------------------------------------------------------------------------- shortcut bias
BIAS = [
    md("# Shortcut-bias detection: the red-dot experiment\n\n"
       "Can the explanations reveal a model that is right for the wrong reason? Following the paper, a small CNN "
       "is trained on synthetic shapes where a **red dot** is planted on a share (`rates`) of one class's training "
       "images. A model that learns the dot as a shortcut still scores well when the dot is where it learned it, "
       "but its CAM sits on the dot instead of the shape.\n\n"
       "- one model per shortcut rate, plus a **control** trained with the dot on every class half the time "
       "(the dot is there, but says nothing about the label);\n"
       "- each model is evaluated on paired test splits of the same objects: **clean** (no dot), **dotted** "
       "(the dot on every class, at its training place) and **moved** (on every class, at `moved_position`);\n"
       "- the pipeline explains each model on `explain_split` and the judge scores the attention; a sample is "
       "**flagged** when its score is below `threshold`.\n\n"
       "The default judge `offline:groundtruth` is a computed stand-in (the share of the visible region that lies "
       "on the object, from the exact object masks), not a VLM. The paper's claim is checked by the correlation "
       "between shortcut rate and flagged share (target |r| > 0.5). Models train once (≈10 s each on 2 CPU cores) "
       "and are cached. The full curve: `vlmxplain run shortcut_bias -p rates \"[0, 0.25, 0.5, 0.75, 1]\"`."),
    params_cell('''
rates: list = [0.0, 0.75, 1.0]  # shortcut rates, one model each (paper-style curve: 0, 0.25, 0.5, 0.75, 1)
control: bool = True  # also train the control model
shortcut_class: str = "circle"
n_train: int = 1800  # training images per model
epochs: int = 4
n_test: int = 60  # images per test split
explain_split: str = "dotted"  # dotted, moved or clean
moved_position: str = "bottom-right"
seed: int = 0
cam: str = "gradcam"
judge: str = "offline:groundtruth"
alpha: float = 25.0
beta: float = 0.6
threshold: float = 2.5
run_dir: str = "runs/shortcut_bias"
figures_dir: str = "figures"
'''),
    code(SETUP + """
p = vxa.validate_bias_params(
    rates=rates, control=control, shortcut_class=shortcut_class, n_train=n_train, epochs=epochs, n_test=n_test,
    explain_split=explain_split, moved_position=moved_position, seed=seed, cam=cam, judge=judge, alpha=alpha,
    beta=beta, threshold=threshold, run_dir=run_dir, figures_dir=figures_dir)
tag = slug(f"r{'-'.join(f'{r:g}' for r in p.rates)}-{p.shortcut_class}-{p.explain_split}-{p.judge}-t{p.threshold:g}")
figures = Path(p.figures_dir)
figures.mkdir(parents=True, exist_ok=True)"""),
    md("## The data\nThe same objects appear in every test split; only the dot changes."),
    code("""show_figure(vxa.plot_split_examples(p), f"shortcut_bias-{tag}-splits.png");"""),
    md("## Train the models\nEach model is trained once and then loaded from the model cache (`$VLMXPLAIN_MODELS`)."),
    code(IGNORE + """
import time
t0 = time.perf_counter()
models = vxa.train_bias_models(p)
print(f"{len(models)} models ready in {time.perf_counter() - t0:.1f} s")"""),
    md("## Run the experiment\nFor each model: accuracy on each split, then `explain` on the chosen split with the "
       "judge, and the share of CAM energy on the dot (from the raw CAM upsampled to the image)."),
    code("""result = vxa.run_bias_experiment(p, models=models)
result.table.to_csv(Path(p.run_dir) / "bias_results.csv", index=False)
result.samples.to_csv(Path(p.run_dir) / "bias_samples.csv", index=False)
result.table.drop(columns=["run_dir"])"""),
    md("Columns: `accuracy_*` per split; `flagged_share` = share of judged samples scored below the threshold "
       "(Correct-Low + Wrong-Low); `correct_low_share` = right for the wrong reason; `energy_on_shortcut` / "
       "`energy_on_object` = share of CAM energy in the dot's box / on the object; `peak_on_shortcut` = share of "
       "images whose CAM peaks on the dot; `predicted_shortcut_class` = share predicted as the shortcut class."),
    code("result.correlation"),
    md("## The claims"),
    code(CHECK + """
r = result.r
print(f"models: {', '.join(result.table['model'])}")
if p.control:
    print(f"control reaches >= 95% on the clean split: {result.control_accuracy >= 0.95}")
if len(p.rates) >= 3:
    print(f"|r(shortcut rate, flagged share)| > 0.5: {bool(abs(r) > 0.5)}")"""),
    code("""print(f"Pearson r(shortcut rate, flagged share) = {r:.2f} over {len(p.rates)} rates; "
      f"control accuracy {result.control_accuracy}")"""),
    md("## Figures\nThe curve: as the shortcut rate grows the judge flags more samples and the CAM energy moves onto "
       "the dot, while the clean-split accuracy hides most of it until the highest rates. Dotted lines: the control."),
    code("""show_figure(vxa.plot_bias_curve(result), f"shortcut_bias-{tag}-curve.png");"""),
    md("The flagged samples of each model: bright = what the judge's mask leaves visible; the dot outlined in "
       "cyan."),
    code("""show_figure(vxa.plot_flagged_gallery(result, per_model=5), f"shortcut_bias-{tag}-flagged.png");"""),
]

# ----------------------------------------------------------------------------------------- sweep
SWEEP = [
    md("# Alpha × beta sweep\n\n"
       "The masked CAM image depends on the sigmoid's steepness `alpha` and midpoint `beta`. Which values make the "
       "judge's scores agree best with a reference? The run is explained once; every grid cell is then judged "
       "again **from the stored CAMs** (`vx.rejudge`: no CAM is recomputed, judgments are cached and the sweep "
       "resumes if interrupted).\n\n"
       "Reference (`reference`): offline, `groundtruth` = ground-truth localisation on the shapes set "
       "(5 × the share of the raw CAM's energy on the object, independent of alpha/beta); with human scores, "
       "`run` (the Annotator's answers in the run store) or a CSV of annotations. Default data: shapes with a red "
       "dot on every image, explained for a model trained with the dot on 75% of its circles "
       "(`shortcut:0.75`), so the attention varies from on-object to on-dot. The paper's grid: alpha 15–30, "
       "beta 0.3–0.7."),
    params_cell('''
data: str = "shapes:n=60,seed=5000,shortcut_on=all"  # any data source, see the pipeline notebook
classifier: str = "shortcut:0.75"  # shortcut:RATE is the bias experiment model, or auto, or a model name
cam: str = "gradcam"
judge: str = "offline:groundtruth"  # the judge being tuned
reference: str = "groundtruth"  # groundtruth, run, or a CSV path of annotations
metric: str = "spearman"  # spearman, pearson, kendall or mae
alphas: list = [15.0, 20.0, 25.0, 30.0]
betas: list = [0.3, 0.4, 0.5, 0.6, 0.7]
threshold: float = 2.5
limit: "Optional[int]" = None  # only the first N samples
run_dir: str = "runs/sweep"
figures_dir: str = "figures"
'''),
    code(SETUP + """
p = vxp.validate_params(data=data, classifier=classifier, cam=cam, judge=judge, threshold=threshold, limit=limit,
                        run_dir=run_dir, figures_dir=figures_dir)
vxa.parse_shortcut_classifier(p.classifier)
grid = vxa.validate_sweep_params(alphas=alphas, betas=betas, reference=reference, metric=metric)
tag = slug(f"{Path(p.data).name}-{p.classifier}-{p.judge}-vs-{Path(grid.reference).stem}-{grid.metric}")
figures = Path(p.figures_dir)
figures.mkdir(parents=True, exist_ok=True)"""),
    md("## Explain once\nAt the paper's default (alpha 25, beta 0.6); the sweep reuses these CAMs."),
    code("""dataset = vxp.load_data(p.data, p.limit)
clf = vxa.load_experiment_classifier(p.classifier, p.data)
run = vx.explain(clf, dataset, cam=p.cam, alpha=25.0, beta=0.6, judge=p.judge, run_dir=p.run_dir,
                 threshold=p.threshold, progress=False, verbose=False)
print(f"{dataset.name}: {len(dataset)} samples, classifier {clf.name}")"""),
    md("## Sweep"),
    code("""result = vxa.alpha_beta_sweep(run, grid.alphas, grid.betas, judge=p.judge, reference=grid.reference,
                              metric=grid.metric, classifier=clf, threshold=p.threshold)
result.table.to_csv(Path(p.run_dir) / "sweep.csv", index=False)
result.table"""),
    code(CHECK + """
print(f"grid: {len(grid.alphas)} alphas x {len(grid.betas)} betas = {len(result.table)} cells; "
      f"samples compared per cell: {sorted(set(result.table['n']))}")
print(f"reference: {result.reference_label}")"""),
    code("""best = result.best
print(f"best cell for {grid.metric}: alpha = {best['alpha']:g}, beta = {best['beta']:g} "
      f"({grid.metric} = {best[grid.metric]:.3f}, n = {int(best['n'])})")
paper = result.table[(result.table["alpha"] == 25) & (result.table["beta"] == 0.6)]
if len(paper):
    print(f"paper's default alpha 25, beta 0.6: {grid.metric} = {paper[grid.metric].iloc[0]:.3f}")"""),
    md("## Heat map"),
    code("""show_figure(vxa.plot_sweep_heatmap(result), f"sweep-{tag}-heatmap.png");"""),
    md("What the judge sees over the grid, for the sample whose score changes most across it."),
    code("""spread = pd.concat([run.table_for(judge=p.judge, alpha=a, beta=b).set_index("id")["score"]
                    for a in grid.alphas for b in grid.betas], axis=1)
example = (spread.max(axis=1) - spread.min(axis=1)).sort_index().idxmax()
print(f"{example}: score from {spread.loc[example].min():.2f} to {spread.loc[example].max():.2f} over the grid")
show_figure(vxa.plot_mask_grid(run, example, grid.alphas, grid.betas), f"sweep-{tag}-masks.png");"""),
]

# ----------------------------------------------------------------------------------------- agreement
AGREEMENT = [
    md("# Judge–human agreement\n\n"
       "How well do the judge's scores match people's? Pearson, Spearman and Kendall correlations with bootstrap "
       "confidence intervals (scipy), agreement between the annotators (Krippendorff's alpha, weighted Cohen's "
       "kappa), the share of judge explanations the annotators accept, a scatter plot with the fit, and "
       "masked-vs-overlay scores when the same VLM judge was shown both.\n\n"
       "Annotations (`annotations`): `run` = the answers given with the Annotator (`run.annotate(\"name\")`), saved "
       "in the run store; or a CSV with `sample_id, annotator, score[, accept]`.\n\n"
       "**Offline default: `simulated`.** Without human answers this notebook uses a clearly labelled stand-in: "
       "the `offline:groundtruth` judge is the reference rater, and `n_annotators` simulated annotators are drawn "
       "from its scores with noise (`annotator_noise`, rounded to whole points). Their names start with "
       "`simulated-` and every figure says SIMULATED. They show the machinery, **not human data**; no conclusion "
       "about human agreement may be drawn from them.\n\n"
       "`data: None` analyses the run already in `run_dir` instead of explaining a dataset."),
    params_cell('''
data: "Optional[str]" = "shapes:n=60,seed=5000,shortcut_on=all"  # None analyses the run already in run_dir
classifier: str = "shortcut:0.75"
cam: str = "gradcam"
alpha: float = 25.0
beta: float = 0.6
judge: str = "offline:faithfulness"  # the judge under test
threshold: float = 2.5
limit: "Optional[int]" = None  # only the first N samples
annotations: str = "simulated"  # simulated, run, or a CSV path
n_annotators: int = 3  # simulated annotators only
annotator_noise: float = 0.75  # simulated annotators only, in score points
n_boot: int = 1000  # bootstrap resamples for the confidence intervals
seed: int = 0
run_dir: str = "runs/agreement"
figures_dir: str = "figures"
'''),
    code(SETUP + """
ap = vxa.validate_agreement_params(annotations=annotations, n_annotators=n_annotators,
                                   annotator_noise=annotator_noise, n_boot=n_boot, seed=seed)
if data is not None:
    p = vxp.validate_params(data=data, classifier=classifier, cam=cam, alpha=alpha, beta=beta, judge=judge,
                            threshold=threshold, limit=limit, run_dir=run_dir, figures_dir=figures_dir)
    vxa.parse_shortcut_classifier(p.classifier)
else:  # analyse the run already in run_dir: its own judge, alpha and beta
    vx.open_run(run_dir)  # fails now, naming run_dir, when there is no run there
    vxa.validate_threshold(threshold)
tag = slug(f"{Path(data).name if data else Path(run_dir).name}-{judge if data else 'run'}-{Path(ap.annotations).stem}")
figures = Path(figures_dir)
figures.mkdir(parents=True, exist_ok=True)"""),
    md("## The run"),
    code("""if data is not None:
    dataset = vxp.load_data(p.data, p.limit)
    clf = vxa.load_experiment_classifier(p.classifier, p.data)
    run = vx.explain(clf, dataset, cam=p.cam, alpha=p.alpha, beta=p.beta, judge=p.judge, run_dir=p.run_dir,
                     threshold=p.threshold, progress=False, verbose=False)
else:
    run = vx.open_run(run_dir)
table = run.table
judge_scores = table.loc[table["judge_status"] == "ok"].set_index("id")["score"]
print(f"{run.config['judge']} judged {len(judge_scores)} of {len(table)} samples in {run.run_dir.name}")"""),
    md("## The annotations"),
    code("""if ap.annotations == "simulated":
    # the reference rater: the ground-truth judge on the same masked images (needs object masks)
    vx.rejudge(run, judge="offline:groundtruth", progress=False)
    gt = run.table_for(judge="offline:groundtruth")
    gt = gt.loc[gt["judge_status"] == "ok"].set_index("id")["score"]
    ann = vxa.simulate_annotators(gt, ap.n_annotators, ap.annotator_noise, seed=ap.seed, judge_scores=judge_scores)
    ann.to_csv(Path(run.run_dir) / "annotations-SIMULATED.csv", index=False)
else:
    ann = vxa.load_annotations(ap.annotations, run)
source = vxa.describe_source(ann)
simulated = bool(ann["simulated"].any())
ann.head()"""),
    code(CHECK + """
print(source)"""),
    md("## Judge vs annotators\nOne row per annotator and method, and against the mean annotator score "
       "(`mean_human`: for simulated annotators, the mean *simulated* score)."),
    code("""agreement = vxa.agreement_table(run.table, ann.drop(columns=["simulated"]), n_boot=ap.n_boot, seed=ap.seed)
agreement.insert(0, "annotations", "SIMULATED" if simulated else "human")
agreement.to_csv(Path(run.run_dir) / f"agreement-{tag}.csv", index=False)
agreement"""),
    code("""mean_score = ann.groupby("sample_id")["score"].mean()
label = "SIMULATED annotators (not human data)" if simulated else "human annotators"
fig = vxa.plot_agreement(judge_scores, mean_score, title=f"{run.config['judge']} vs mean of {label}")
fig.axes[0].set_ylabel("mean annotator score" + (" (SIMULATED)" if simulated else ""))
show_figure(fig, f"agreement-{tag}-scatter.png");"""),
    md("Reading it with the defaults: the judge under test, `offline:faithfulness`, asks whether the visible region "
       "carries the model's evidence (*faithfulness*); the reference rater behind the simulated annotators asks "
       "whether it lies on the object (*plausibility*). The default classifier learned the red-dot shortcut, so "
       "a faithful explanation of it points at the dot: the two kinds of score can disagree by design, which is "
       "why a judge must be validated against people before its scores are trusted."),
    md("## Between annotators"),
    code("""if ann["annotator"].nunique() >= 2:
    iaa = vxa.inter_annotator_agreement(ann.drop(columns=["simulated"]))
    display(iaa.to_frame().assign(annotations="SIMULATED" if simulated else "human"))
else:
    print(f"inter-annotator agreement needs 2 or more annotators; these annotations have "
          f"{ann['annotator'].nunique()}")"""),
    md("## Acceptance of the judge's explanations\nThe share of judged samples whose explanation the annotators "
       "accepted (Wilson interval). Simulated annotators \"accept\" when the judge's score is within one point of "
       "theirs."),
    code("""if "accept" in ann and ann["accept"].notna().any():
    rate = vxa.acceptance_rate(ann["accept"])
    print(f"acceptance rate {rate.rate:.1%} (95% CI {rate.ci[0]:.1%}–{rate.ci[1]:.1%}) over "
          f"{int(ann['accept'].notna().sum())} answers" + (" — SIMULATED annotators" if simulated else ""))
else:
    print("no accept/reject answers in these annotations")"""),
    md("## Masked vs overlay\nWhen the same VLM judge was run with `input_kind` masked and overlay on this run, "
       "their scores are compared sample by sample (mean difference with a bootstrap CI, Wilcoxon test)."),
    code("""views = vxa.view_scores(run)
if views is None:
    print("not available: this run has no judge that scored both the masked image and the overlay "
          "(run a VLM judge twice, with input_kind masked and overlay)")
else:
    cmp = vxa.paired_comparison(views["masked"], views["overlay"], names=("masked", "overlay"), n_boot=ap.n_boot)
    display(cmp.to_frame())"""),
]

NOTEBOOKS_SPEC = {"quickstart": QUICKSTART, "shortcut_bias": BIAS, "sweep": SWEEP, "agreement": AGREEMENT}


def build(name: str) -> nbf.NotebookNode:
    cells = [nbf.from_dict(c) for c in NOTEBOOKS_SPEC[name]]
    for i, cell in enumerate(cells):
        cell.id = f"{name.replace('_', '-')}-{i:02d}"  # stable ids: regenerating gives a clean diff
    return nbf.v4.new_notebook(cells=cells, metadata={
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    })


def keep_checked_outputs(source: nbf.NotebookNode, executed: nbf.NotebookNode, strict: bool = True) -> None:
    """Copy the outputs of `# NBVAL_CHECK_OUTPUT` cells from an executed copy (papermill may add
    an injected-parameters cell; cells are matched by source)."""
    done = {c.source: c for c in executed.cells if c.cell_type == "code"}
    for cell in source.cells:
        if cell.cell_type == "code" and CHECK in cell.source:
            if cell.source not in done and not strict:
                continue
            ran = done[cell.source]
            cell.outputs = [o for o in ran.outputs if o.get("name") != "stderr"]
            cell.execution_count = ran.execution_count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--execute", action="store_true", help="run each notebook and keep the checked outputs")
    parser.add_argument("names", nargs="*", default=list(NOTEBOOKS_SPEC))
    args = parser.parse_args(argv)
    for name in args.names:
        nb = build(name)
        out = NOTEBOOKS / f"{name}.ipynb"
        if args.execute:
            import papermill as pm

            scratch = Path(tempfile.mkdtemp(prefix=f"vx-{name}-"))
            try:
                nbf.write(nb, scratch / out.name)
                pm.execute_notebook(str(scratch / out.name), str(scratch / "executed.ipynb"), cwd=str(scratch),
                                    kernel_name="python3", progress_bar=False)
                keep_checked_outputs(nb, nbf.read(scratch / "executed.ipynb", as_version=4))
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
        elif out.is_file():  # keep the checked outputs of unchanged cells
            keep_checked_outputs(nb, nbf.read(out, as_version=4), strict=False)
        missing = [c.source.splitlines()[1][:50] for c in nb.cells
                   if c.cell_type == "code" and CHECK in c.source and not c.get("outputs")]
        if missing:
            print(f"{name}: checked cells without outputs (nbval will fail), run with --execute: {missing}",
                  file=sys.stderr)
        nbf.write(nb, out)
        print("wrote", out.relative_to(ROOT), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
