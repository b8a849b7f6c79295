"""Write notebooks/pipeline.ipynb (kept as code so the notebook's cells are reviewed as text)."""
from pathlib import Path

import nbformat as nbf

md, code = nbf.v4.new_markdown_cell, nbf.v4.new_code_cell

cells = [
    md("# vlmxplain pipeline\n\n"
       "Explains an image classifier on a dataset, following *A Novel Framework for Automated Explain Vision "
       "Model Using Vision-Language Models* (arXiv 2508.20227):\n\n"
       "1. classify each image and extract a CAM saliency map (`cam`);\n"
       "2. turn the map into a **masked CAM image** with the sigmoid `M = 1 / (1 + exp(alpha * (beta - v)))`;\n"
       "3. ask a **judge** to score the attention 0–5 (`offline:*` judges run without keys; `openai:<model>`, "
       "`gemini:<model>` and `openai-compatible:<model>@<url>` use a VLM);\n"
       "4. sort samples into the **quadrant matrix** Correct/Wrong × High/Low at `threshold`.\n\n"
       "Run it with papermill or `vlmxplain run pipeline -p data shapes -p judge offline:groundtruth`. "
       "Results go to `run_dir` (a resumable SQLite run store: rerunning does only what is missing) and "
       "figures to `figures_dir`."),
    code('data: str = "gallery"  # gallery, shapes, a class-folder path, or a CSV file (shapes options: see README)\n'
         'classifier: str = "auto"  # auto, efficientnet_lite0, a timm name, or a ShapesNet checkpoint (.pt)\n'
         'cam: str = "gradcam"  # gradcam, gradcam++, xgradcam, hirescam, layercam, eigencam, scorecam, ablationcam\n'
         "alpha: float = 25.0  # sigmoid steepness (paper: 25)\n"
         "beta: float = 0.6  # sigmoid midpoint on the normalised CAM (paper: 0.4-0.7, best 0.6)\n"
         'judge: str = "offline:faithfulness"  # or offline:groundtruth, openai:<model>, gemini:<model>, ...\n'
         'input_kind: str = "masked"  # what a VLM judge is shown: masked, overlay or both\n'
         "threshold: float = 2.5  # a score at or above it counts as High\n"
         "limit: \"Optional[int]\" = None  # only the first N samples\n"
         'run_dir: str = "runs/pipeline"\n'
         'figures_dir: str = "figures"',
         metadata={"tags": ["parameters"]}),
    md("## Parameters\nChecked before any work: a bad value fails here with a message naming the parameter."),
    code("import matplotlib\n"
         "matplotlib.use(\"Agg\")\n"
         "import re\n"
         "from pathlib import Path\n\n"
         "import matplotlib.pyplot as plt\n"
         "from IPython.display import Image, display\n\n"
         "import vlmxplain as vx\n"
         "from vlmxplain import params as vxp, plots\n\n"
         "p = vxp.validate_params(data=data, classifier=classifier, cam=cam, alpha=alpha, beta=beta, judge=judge,\n"
         "                        input_kind=input_kind, threshold=threshold, limit=limit, run_dir=run_dir,\n"
         "                        figures_dir=figures_dir)\n"
         "tag = re.sub(r\"[^A-Za-z0-9.]+\", \"-\", f\"{Path(p.data).name}-{p.cam}-{p.judge}-a{p.alpha:g}-b{p.beta:g}\").strip(\"-\")\n"
         "figures = Path(p.figures_dir)\n"
         "figures.mkdir(parents=True, exist_ok=True)\n"
         "print(\"parameters:\", {k: v for k, v in p.as_dict().items() if k not in ('run_dir', 'figures_dir')})"),
    md("## Data and classifier"),
    code("dataset = vxp.load_data(p.data, p.limit)\n"
         "clf = vxp.resolve_classifier(p.classifier, p.data)\n"
         "print(f\"{dataset.name}: {len(dataset)} samples; classifier {clf.name}, target layer {clf.target_layer_name}\")"),
    md("## Explain\nCAMs, masked images and judgments are committed to the run store as they are computed."),
    code("judge_options = {} if p.judge.startswith(\"offline:\") else {\"input_kind\": p.input_kind}\n"
         "run = vx.explain(clf, dataset, cam=p.cam, alpha=p.alpha, beta=p.beta, judge=p.judge, run_dir=p.run_dir,\n"
         "                 threshold=p.threshold, judge_options=judge_options, progress=False)\n"
         "table = run.table\n"
         "table.to_csv(Path(p.run_dir) / \"results.csv\", index=False)\n"
         "table[[\"label\", \"predicted_name\", \"confidence\", \"correct\", \"score\", \"quadrant\"]].head(12)"),
    md("## Quadrant matrix\n**Correct-Low** = right answer for the wrong reasons; **Wrong-High** = a plausible "
       "mistake; **Wrong-Low** = a failure."),
    code("quadrants = run.quadrants(p.threshold)\n"
         "path = plots.save_figure(quadrants.plot(title=f\"{dataset.name}: {p.cam} → {p.judge}\"), figures / f\"pipeline-{tag}-quadrants.png\")\n"
         "display(Image(filename=str(path)))\n"
         "quadrants.to_frame()"),
    code("quadrants.per_class"),
    md("## Scores by correctness"),
    code("path = plots.save_figure(plots.plot_score_histogram(table, p.threshold), figures / f\"pipeline-{tag}-scores.png\")\n"
         "display(Image(filename=str(path)))"),
    md("## Masked CAM images per quadrant\nWhat the judge saw, for the most telling samples of each quadrant."),
    code("path = plots.save_figure(plots.plot_quadrant_gallery(run, per_quadrant=4), figures / f\"pipeline-{tag}-gallery.png\")\n"
         "display(Image(filename=str(path)))"),
    md("## Skipped inputs and summary"),
    code("print(run.last_summary)\n"
         "run.skipped"),
]

nb = nbf.v4.new_notebook(cells=cells, metadata={
    "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
})
out = Path(__file__).resolve().parent.parent / "notebooks" / "pipeline.ipynb"
nbf.write(nb, out)
print("wrote", out)
