"""Measure, over training seeds and CPU settings, every property that a test asserts about a
*trained* ShapesNet, so the tests' thresholds carry a measured margin instead of being tuned to
one machine (a ShapesNet trained with one torch thread, or with oneDNN limited to AVX2, has
weights ~50% different from the default build).

    python tools/margins.py run --seeds 0 1 2 --out margins.json   # trains 4 models per (seed, setting)
    python tools/margins.py report margins.json                    # worst value vs each test threshold

Each (seed, setting) runs in its own process with its own model cache; ``seed`` is the weight
initialisation and batch-order seed of :func:`train_shapes_classifier` (the tests use 0) — the
data stay those of the tests. Settings: ``one-thread`` (``OMP_NUM_THREADS=1``), ``default``
(torch's default thread count) and ``avx2`` (``ONEDNN_MAX_CPU_ISA=AVX2``).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = {"one-thread": {"OMP_NUM_THREADS": "1"}, "default": {}, "avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2"}}

#: (measured key, comparison, threshold, where a test asserts it). "<" means the test needs value < threshold.
PROPERTIES = [
    ("bias45.control_accuracy", ">=", 0.9, "test_bias: control learns the shapes"),
    ("bias45.rate0_accuracy_clean", ">=", 0.9, "test_bias: clean model learns the shapes"),
    ("bias45.rate1_accuracy_clean", "<", 0.8, "test_bias: rate-1 misses undotted circles"),
    ("bias45.rate1_predicted_shortcut", ">", 0.9, "test_bias: rate-1 calls dotted images circles"),
    ("bias45.control_predicted_shortcut", "<", 0.45, "test_bias: control does not"),
    ("bias45.flagged_rate0", "<", 0.15, "test_bias: flagged share, clean model"),
    ("bias45.flagged_rate1", ">", 0.8, "test_bias: flagged share, rate-1"),
    ("bias45.flagged_rate075_over_rate0", ">", 0.0, "test_bias: flagged share, rate-0.75 minus rate-0"),
    ("bias45.flagged_rate1_over_rate075", ">=", -0.1, "test_bias: flagged share, rate-1 minus rate-0.75"),
    ("bias45.flagged_control", "<", 0.15, "test_bias: flagged share, control"),
    ("bias45.r", ">", 0.5, "test_bias: r(rate, flagged share)"),
    ("bias45.energy_ratio", ">", 10.0, "test_bias: energy on the dot, rate-1 / control"),
    ("bias45.rate1_peak_on_shortcut", ">", 0.8, "test_bias: CAM peak on the dot, rate-1"),
    ("bias45.control_peak_on_shortcut", "<", 0.1, "test_bias: CAM peak on the dot, control"),
    ("bias45.object_energy_drop", ">", 0.0, "test_bias: energy on object, control - rate-1"),
    ("bias60.control_accuracy", ">=", 0.9, "test_notebooks: shortcut_bias control model (paper: >= 0.95)"),
    ("bias60.r", ">", 0.5, "test_notebooks: shortcut_bias prints |r| > 0.5: True"),
    ("sweep.reference_std", ">", 0.5, "test_sweep: ground-truth reference spreads (shortcut:0.75)"),
    ("pipeline.shapes_correct12", ">", 0.9, "test_notebooks: pipeline on shapes:n=30, limit 12"),
]


def _bias_measures(result) -> dict[str, float]:
    t = result.table.set_index("model")
    flagged = t.loc[["rate-0", "rate-0.75", "rate-1"], "flagged_share"].to_numpy()
    return {
        "control_accuracy": result.control_accuracy,
        "rate0_accuracy_clean": t.loc["rate-0", "accuracy_clean"],
        "rate1_accuracy_clean": t.loc["rate-1", "accuracy_clean"],
        "rate1_predicted_shortcut": t.loc["rate-1", "predicted_shortcut_class"],
        "control_predicted_shortcut": t.loc["control", "predicted_shortcut_class"],
        "flagged_rate0": flagged[0], "flagged_rate075": flagged[1], "flagged_rate1": flagged[2],
        "flagged_rate075_over_rate0": flagged[1] - flagged[0], "flagged_rate1_over_rate075": flagged[2] - flagged[1],
        "flagged_control": t.loc["control", "flagged_share"],
        "r": result.r,
        "energy_ratio": t.loc["rate-1", "energy_on_shortcut"] / max(t.loc["control", "energy_on_shortcut"], 1e-12),
        "rate1_peak_on_shortcut": t.loc["rate-1", "peak_on_shortcut"],
        "control_peak_on_shortcut": t.loc["control", "peak_on_shortcut"],
        "object_energy_drop": t.loc["control", "energy_on_object"] - t.loc["rate-1", "energy_on_object"],
    }


def worker(seed: int, out: Path) -> None:
    """Measure every property for one training seed, in this process's thread/ISA setting."""
    os.environ["VLMXPLAIN_MODELS"] = tempfile.mkdtemp(prefix=f"margins-models-{seed}-")
    os.environ["VLMXPLAIN_CACHE"] = str(Path(tempfile.mkdtemp(prefix="margins-cache-")) / "judgments.sqlite")
    os.environ["TQDM_DISABLE"] = "1"
    import torch

    import vlmxplain as vx
    from vlmxplain import experiments as vxe, metrics as vxm, models as vxmod
    from vlmxplain.models import shapesnet

    shapesnet.train_shapes_classifier.__kwdefaults__["seed"] = seed  # the tests train with seed 0
    runs = Path(tempfile.mkdtemp(prefix="margins-runs-"))
    t0 = time.perf_counter()
    found: dict[str, float] = {}
    for n_test in (45, 60):
        res = vxe.run_bias_experiment(rates=[0.0, 0.75, 1.0], n_test=n_test, run_dir=str(runs / f"bias{n_test}"))
        found |= {f"bias{n_test}.{k}": float(v) for k, v in _bias_measures(res).items()}
    data = vx.datasets.shapes(30, seed=5000, shortcut_on="all")
    run = vx.explain(vxmod.shortcut_model(0.75), data, judge="offline:groundtruth", run_dir=runs / "sweep",
                     progress=False, verbose=False)
    found["sweep.reference_std"] = float(vxm.groundtruth_reference(run).std())
    from vlmxplain import params as vxp

    spec = vxp.PipelineParams.check(data="shapes:n=30", limit=12).data
    clf = vxp.resolve_classifier("auto", spec, progress=False)
    pipe = vx.explain(clf, vx.datasets.shapes(30).limit(12), judge="offline:groundtruth", run_dir=runs / "pipe",
                      progress=False, verbose=False)
    found["pipeline.shapes_correct12"] = float(pipe.table["correct"].mean())
    out.write_text(json.dumps({"seed": seed, "threads": torch.get_num_threads(),
                               "isa": os.environ.get("ONEDNN_MAX_CPU_ISA", "default"),
                               "seconds": round(time.perf_counter() - t0, 1), "values": found}))


def run(seeds: list[int], settings: list[str], out: Path) -> None:
    rows = json.loads(out.read_text()) if out.is_file() else []
    done = {(r["seed"], r["setting"]) for r in rows}
    for setting in settings:
        for seed in seeds:
            if (seed, setting) in done:
                continue
            env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "ONEDNN_MAX_CPU_ISA")}
            env |= SETTINGS[setting] | {"PYTHONPATH": str(ROOT)}
            with tempfile.NamedTemporaryFile(suffix=".json") as tmp:
                subprocess.run([sys.executable, __file__, "worker", "--seed", str(seed), "--out", tmp.name],
                               env=env, check=True)
                rows.append({**json.loads(Path(tmp.name).read_text()), "setting": setting})
            out.write_text(json.dumps(rows, indent=1))  # after each: an interrupted run resumes
            print(f"{setting} seed {seed}: {rows[-1]['seconds']} s", flush=True)


def report(path: Path) -> str:
    rows = json.loads(path.read_text())
    lines = [f"{len(rows)} trainings: " + ", ".join(sorted({f'{r["setting"]}' for r in rows}))
             + f"; seeds {sorted({r['seed'] for r in rows})}",
             f"{'property':36} {'test needs':>12} {'worst':>8} {'best':>8}  where"]
    for key, op, thr, where in PROPERTIES:
        vals = [r["values"][key] for r in rows if key in r["values"]]
        if not vals:
            continue
        worst, best = (min(vals), max(vals)) if op.startswith(">") else (max(vals), min(vals))
        ok = {"<": worst < thr, ">": worst > thr, ">=": worst >= thr}[op]
        lines.append(f"{key:36} {op + ' ' + format(thr, 'g'):>12} {worst:8.3f} {best:8.3f}  {where}"
                     + ("" if ok else "   <-- FAILS on some seed/setting"))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("worker")
    w.add_argument("--seed", type=int, required=True)
    w.add_argument("--out", type=Path, required=True)
    r = sub.add_parser("run")
    r.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    r.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    r.add_argument("--out", type=Path, default=Path("margins.json"))
    p = sub.add_parser("report")
    p.add_argument("path", type=Path)
    a = ap.parse_args(argv)
    if a.cmd == "worker":
        worker(a.seed, a.out)
    elif a.cmd == "run":
        run(a.seeds, a.settings, a.out)
        print(report(a.out))
    else:
        print(report(a.path))


if __name__ == "__main__":
    main()
