"""Every bundled notebook runs under papermill with its defaults and with other parameters, and
writes what it promises: non-blank PNG figures named by notebook and parameters, result tables
with the expected rows. A bad parameter stops the notebook in its validation cell, naming it,
before any work (no run directory, no figure)."""
from __future__ import annotations

import os
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import papermill as pm
import pytest
from PIL import Image

from vlmxplain.cli import main as cli_main
from vlmxplain.datasets import gallery
from vlmxplain.params import NOTEBOOK_PARAMS
from vlmxplain.store import RunStore


def default_run_dir(name: str, **parameters) -> str:
    """Where a notebook's run goes without ``run_dir``: ``runs/<notebook>/<data>-<classifier>-<cam>``."""
    return NOTEBOOK_PARAMS[name].check(**parameters).run_dir

NOTEBOOKS = Path(__file__).resolve().parent.parent / "vlmxplain" / "notebooks"
pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module", autouse=True)
def _caches(shared_caches):
    """See tests/conftest.py: shared_caches."""


# The ShapesNets a notebook loads from the model cache are trained here, in the test process,
# before its kernel starts: every test works alone (``-k <one>``) and in any order.
@pytest.fixture(scope="module")
def bias_models(_caches):
    """The shortcut_bias notebook's default models (rates 0, 0.75, 1 and the control)."""
    from vlmxplain import experiments as vxe

    return vxe.train_bias_models(vxe.validate_bias_params())


@pytest.fixture(scope="module")
def shapes_net(_caches):
    """The offline shapes classifier (classifier="auto" on shapes data; the bias rate-0 model)."""
    from vlmxplain.models import shapes_model

    return shapes_model(progress=False)


@pytest.fixture(scope="module")
def shortcut_net(_caches):
    """``shortcut:0.75``: the sweep and agreement notebooks' default classifier."""
    from vlmxplain.models import shortcut_model

    return shortcut_model(0.75)


def execute(name: str, workdir: Path, **parameters) -> nbformat.NotebookNode:
    """Run a bundled notebook in ``workdir`` (its relative run_dir/figures_dir land there)."""
    out = workdir / f"{name}.executed.ipynb"
    pm.execute_notebook(str(NOTEBOOKS / f"{name}.ipynb"), str(out), parameters=parameters, cwd=str(workdir),
                        kernel_name="python3", progress_bar=False)
    return nbformat.read(out, as_version=4)


def printed(nb: nbformat.NotebookNode) -> str:
    return "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                     if o.get("output_type") == "stream" and o.get("name") == "stdout")


def figures(folder: Path, notebook: str, count: int, *parts: str) -> list[Path]:
    """The notebook's PNGs in ``folder``: ``count`` of them, named ``<notebook>-...`` with ``parts``
    in the name, each a decodable, non-blank image."""
    found = sorted(folder.glob(f"{notebook}-*.png"))
    assert len(found) == count, [p.name for p in found]
    for path in found:
        assert all(part in path.name for part in parts), (path.name, parts)
        with Image.open(path) as im:
            assert im.format == "PNG"
            img = np.asarray(im.convert("RGB"))
        assert img.shape[0] >= 150 and img.shape[1] >= 150, (path.name, img.shape)
        assert img.std() > 15 and len(np.unique(img.reshape(-1, 3), axis=0)) > 50, path.name
    return found


def fails_fast(name: str, workdir: Path, parameter: str, value) -> None:
    with pytest.raises(pm.PapermillExecutionError) as err:
        execute(name, workdir, **{parameter: value})
    assert err.value.ename == "ValueError" and parameter in err.value.evalue, (err.value.ename, err.value.evalue)
    assert not (workdir / "runs").exists() and not (workdir / "figures").exists()


# ----------------------------------------------------------------------------- shortcut bias
def test_shortcut_bias_defaults(tmp_path, bias_models):
    nb = execute("shortcut_bias", tmp_path)
    figures(tmp_path / "figures", "shortcut_bias", 3, "r0-0.75-1-circle-dotted-offline-groundtruth-t2.5")
    table = pd.read_csv(tmp_path / "runs/shortcut_bias/bias_results.csv")
    assert list(table["model"]) == ["rate-0", "rate-0.75", "rate-1", "control"]
    assert len(pd.read_csv(tmp_path / "runs/shortcut_bias/bias_samples.csv")) == 4 * 60
    out = printed(nb)
    # the notebook reports the paper's claims; the thresholds asserted on its models carry margins
    # measured over seeds and CPU settings (tools/margins.py: control >= 0.983, r >= 0.854)
    assert "control reaches >= 95% on the clean split: " in out
    assert table.set_index("model").loc["control", "accuracy_clean"] >= 0.9
    assert "|r(shortcut rate, flagged share)| > 0.5: True" in out


def test_shortcut_bias_other_parameters(tmp_path, bias_models):
    execute("shortcut_bias", tmp_path, rates=[0.0, 0.75], control=False, explain_split="moved", n_test=30,
            judge="offline:faithfulness", threshold=3.0, run_dir="runs/bias-moved", figures_dir="figs")
    figures(tmp_path / "figs", "shortcut_bias", 3, "r0-0.75-circle-moved-offline-faithfulness-t3")
    table = pd.read_csv(tmp_path / "runs/bias-moved/bias_results.csv")
    assert list(table["model"]) == ["rate-0", "rate-0.75"] and (table["n_judged"] == 30).all()
    assert len(pd.read_csv(tmp_path / "runs/bias-moved/bias_samples.csv")) == 60


def test_shortcut_bias_bad_parameter(tmp_path):
    fails_fast("shortcut_bias", tmp_path, "rates", [0.0, 1.5])


# ----------------------------------------------------------------------------- pipeline (the lead's notebook)
def test_pipeline_defaults(tmp_path):
    execute("pipeline", tmp_path)
    figures(tmp_path / "figures", "pipeline", 3, "gallery-gradcam-offline-faithfulness-a25-b0.6")
    table = pd.read_csv(tmp_path / default_run_dir("pipeline") / "results.csv")
    assert len(table) == len(gallery()) and set(table["judge_status"]) == {"ok"}
    assert table["score"].between(0, 5).all()


def test_pipeline_other_parameters(tmp_path, shapes_net):
    execute("pipeline", tmp_path, data="shapes:n=30", judge="offline:groundtruth", limit=12, threshold=3.0,
            beta=0.5, run_dir="runs/pipe-shapes")
    figures(tmp_path / "figures", "pipeline", 3, "offline-groundtruth-a25-b0.5")
    table = pd.read_csv(tmp_path / "runs/pipe-shapes/results.csv")
    assert len(table) == 12 and set(table["judge_status"]) == {"ok"}
    assert table["correct"].mean() > 0.9  # the cached offline shapes classifier


def test_pipeline_bad_parameter(tmp_path):
    fails_fast("pipeline", tmp_path, "alpha", -1.0)


# ----------------------------------------------------------------------------- quickstart
def test_quickstart_defaults(tmp_path):
    nb = execute("quickstart", tmp_path)
    figures(tmp_path / "figures", "quickstart", 3, "gallery-gradcam-offline-faithfulness-a25-b0.6")
    n = len(gallery())
    assert len(pd.read_csv(tmp_path / default_run_dir("quickstart") / "results.csv")) == n
    assert f"{n} rows in results.csv; judged: {n}, skipped: 0" in printed(nb)


def test_quickstart_other_parameters(tmp_path):
    execute("quickstart", tmp_path, limit=3, cam="layercam", beta=0.5, threshold=3.5, run_dir="runs/qs")
    figures(tmp_path / "figures", "quickstart", 3, "gallery-layercam-offline-faithfulness-a25-b0.5")
    table = pd.read_csv(tmp_path / "runs/qs/results.csv")
    assert list(table["id"]) == gallery().ids[:3]


def test_quickstart_bad_parameter(tmp_path):
    fails_fast("quickstart", tmp_path, "beta", 2.0)


# ----------------------------------------------------------------------------- sweep
def test_sweep_defaults(tmp_path, shortcut_net):
    nb = execute("sweep", tmp_path)
    figures(tmp_path / "figures", "sweep", 2, "shortcut-0.75-offline-groundtruth-vs-faithfulness-spearman")
    table = pd.read_csv(tmp_path / default_run_dir("sweep") / "sweep.csv")
    assert len(table) == 20 and (table["n"] == 60).all() and table["spearman"].notna().all()
    out = printed(nb)
    assert "grid: 4 alphas x 5 betas = 20 cells" in out and ("best cell for spearman" in out or "no best cell" in out)
    assert "\n- " in out and table["spearman_ci_low"].le(table["spearman"]).all()  # findings, CIs


def test_sweep_through_the_cli(tmp_path, shortcut_net):
    code = cli_main(["run", "sweep", "--out", str(tmp_path), "--name", "sweep-cli.ipynb", "--no-progress",
                     "-p", "alphas", "[20, 30]", "-p", "betas", "[0.5, 0.6, 0.7]", "-p", "metric", "pearson",
                     "-p", "judge", "offline:faithfulness", "-p", "limit", "24",
                     "-p", "run_dir", str(tmp_path / "runs/sweep-cli"), "-p", "figures_dir", str(tmp_path / "figs")])
    assert code == 0 and (tmp_path / "sweep-cli.ipynb").is_file()
    figures(tmp_path / "figs", "sweep", 2, "offline-faithfulness-vs-faithfulness-pearson")
    table = pd.read_csv(tmp_path / "runs/sweep-cli/sweep.csv")
    assert sorted(zip(table["alpha"], table["beta"])) == [(a, b) for a in (20, 30) for b in (0.5, 0.6, 0.7)]
    assert (table["n"] == 24).all()


def test_sweep_bad_parameter(tmp_path):
    fails_fast("sweep", tmp_path, "metric", "r2")


# ----------------------------------------------------------------------------- agreement
def test_agreement_defaults_use_labelled_simulated_annotators(tmp_path, shortcut_net):
    nb = execute("agreement", tmp_path)
    found = figures(tmp_path / "figures", "agreement", 3, "offline-faithfulness-simulated")
    assert [p.name.rsplit("-", 1)[1] for p in found] == ["reliability.png", "sanity.png", "scatter.png"]
    assert "repeats and prompt templates need a VLM judge" in printed(nb)
    assert "sanity check" in printed(nb) and "true CAM wins" in printed(nb)
    run_dir = tmp_path / default_run_dir("agreement")
    ann = pd.read_csv(run_dir / "annotations-SIMULATED.csv")
    assert len(ann) == 3 * 60 and ann["annotator"].str.startswith("simulated-").all() and ann["simulated"].all()
    table = pd.read_csv(next(run_dir.glob("agreement-*.csv")))
    assert len(table) == 4 * 3 and set(table["annotations"]) == {"SIMULATED"}
    assert set(table["rater"]) == {"simulated-1", "simulated-2", "simulated-3", "mean_human"}
    assert "SIMULATED annotators (not human data): 3 raters, 60 samples" in printed(nb)


def test_agreement_with_human_csv_then_the_annotator_store(tmp_path, shortcut_net):
    rng = np.random.default_rng(0)
    ids = [f"shapes-{i:05d}" for i in range(20)]
    csv = tmp_path / "humans.csv"
    pd.DataFrame({"sample_id": ids * 2, "annotator": ["ann"] * 20 + ["ben"] * 20,
                  "score": rng.integers(0, 6, 40), "accept": rng.integers(0, 2, 40).astype(bool)}).to_csv(csv,
                                                                                                        index=False)
    nb = execute("agreement", tmp_path, annotations=str(csv), limit=20, judge="offline:groundtruth", n_boot=200,
                 run_dir="runs/humans")
    figures(tmp_path / "figures", "agreement", 3, "offline-groundtruth-humans")
    table = pd.read_csv(next((tmp_path / "runs/humans").glob("agreement-*-offline-groundtruth-humans.csv")))
    assert len(table) == 9 and set(table["annotations"]) == {"human"}
    assert set(table["rater"]) == {"ann", "ben", "mean_human"}
    assert not (tmp_path / "runs/humans/annotations-SIMULATED.csv").exists()
    assert "human annotators: 2 raters, 20 samples" in printed(nb) and "acceptance rate" in printed(nb)

    # answers given with the Annotator land in the run store; data=None analyses that run as it is
    store = RunStore(tmp_path / "runs/humans")
    for k, sid in enumerate(ids[:10]):
        store.put_annotation(sid, "dana", float(k % 6), accept=True)
    nb = execute("agreement", tmp_path, data=None, annotations="run", run_dir="runs/humans", n_boot=100,
                 figures_dir="figs")
    figures(tmp_path / "figs", "agreement", 3, "humans-run-run")
    out = printed(nb)
    assert "human annotators: 1 raters, 10 samples" in out and "needs 2 or more annotators" in out


def test_agreement_with_a_vlm_judge_shows_repeats_and_templates(tmp_path, shortcut_net, monkeypatch):
    """With a VLM judge (the real openai SDK against the loopback server, which samples like a
    model), the reliability section asks five answers at temperature 0.7 and every named template,
    and reports self-consistency and the spread across templates."""
    from loopback_server import LoopbackServer, SampledScore

    from vlmxplain.judges.vlm import PROMPT_TEMPLATES

    with LoopbackServer(score=SampledScore(4)) as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-notebook-0000")
        monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)  # the kernel inherits it
        nb = execute("agreement", tmp_path, judge="openai:gpt-4o-mini", limit=8, n_boot=100, run_dir="runs/vlm")
        hot = [r for r in server.requests if r.body.get("temperature") == 0.7]
    assert len(hot) == 5 * 8
    figures(tmp_path / "figures", "agreement", 3, "openai-gpt-4o-mini-simulated")
    store = RunStore(tmp_path / "runs/vlm")
    versions = {s.options["template"] for s in store.judge_settings() if s.judge == "openai:gpt-4o-mini"}
    assert versions == set(PROMPT_TEMPLATES)
    rel = pd.read_csv(next((tmp_path / "runs/vlm").glob("reliability-*.csv")))
    assert {"repeats", "templates", "judges"} <= set(rel["part"])
    assert "need a VLM judge" not in printed(nb)


def test_agreement_bad_parameter(tmp_path):
    fails_fast("agreement", tmp_path, "annotations", str(tmp_path / "no-such.csv"))


def test_agreement_without_a_run_fails_naming_run_dir(tmp_path):
    with pytest.raises(pm.PapermillExecutionError) as err:
        execute("agreement", tmp_path, data=None, run_dir="runs/none")
    assert "run_dir" in err.value.evalue and not (tmp_path / "figures").exists()


def test_committed_notebooks_are_clean():
    """Committed notebooks carry one parameters cell and outputs exactly where nbval checks them."""
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, path.name
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            checked = "# NBVAL_CHECK_OUTPUT" in cell.source
            assert bool(cell.get("outputs")) == checked, (path.name, cell.source[:60])
        assert os.path.getsize(path) < 60_000, path.name


# ----------------------------------------------------------------------------- cam methods
def test_cam_methods_defaults(tmp_path, shortcut_net):
    nb = execute("cam_methods", tmp_path)
    found = figures(tmp_path / "figures", "cam_methods", 3, "shapes-n-60-seed-5000-shortcut-on-all-shortcut-0.75")
    assert [p.name.rsplit("-", 1)[1] for p in found] == ["metrics.png", "quadrants.png", "transitions.png"]
    table = pd.read_csv(tmp_path / default_run_dir("cam_methods") / "cam_methods.csv", index_col=0)
    assert list(table.index) == ["gradcam", "gradcam++", "layercam", "eigencam"] and (table["n"] == 60).all()
    assert table["gap_ci_low"].le(table["gap"]).all() and table["gap"].le(table["gap_ci_high"]).all()
    out = printed(nb)
    assert "4 runs (4 methods x 1 layers); samples per run: [60]; shares per run sum to 1: True" in out
    assert "best by insertion - deletion AUC: " in out and "samples change quadrant" in out


def test_cam_methods_through_the_cli_with_layers(tmp_path, shapes_net):
    code = cli_main(["run", "cam_methods", "--out", str(tmp_path), "--name", "cams-cli.ipynb", "--no-progress",
                     "-p", "data", "shapes:n=30", "-p", "classifier", "auto", "-p", "methods", '["gradcam", "eigencam"]',
                     "-p", "layers", '["head_conv", "features.6"]', "-p", "limit", "12", "-p", "n_boot", "200",
                     "-p", "pair", '["gradcam@head_conv", "gradcam@features.6"]',
                     "-p", "run_dir", str(tmp_path / "runs/cams"), "-p", "figures_dir", str(tmp_path / "figs")])
    assert code == 0 and (tmp_path / "cams-cli.ipynb").is_file()
    figures(tmp_path / "figs", "cam_methods", 3, "shapes-n-30-auto-offline-insertion-deletion")
    table = pd.read_csv(tmp_path / "runs/cams/cam_methods.csv", index_col=0)
    assert list(table.index) == ["gradcam@head_conv", "eigencam@head_conv", "gradcam@features.6",
                                 "eigencam@features.6"] and (table["n"] == 12).all()


def test_cam_methods_bad_parameter(tmp_path):
    fails_fast("cam_methods", tmp_path, "methods", ["gradcam", "gradkam"])
