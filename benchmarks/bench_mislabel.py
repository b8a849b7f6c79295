"""Mislabel detection on shapes with injected label noise, side by side in one run (offline).

For each noise rate (5%, 10%, 20% of labels replaced by another class; the true class is kept in
the sample's meta) the clean ShapesNet explains the set with the ``offline:insertion-deletion``
judge, and ``vx.mislabel_report`` scores two detectors against the true labels:

  judge (Wrong-High) — flag a confident prediction that disagrees with the label while the judge
                        finds its attention good; rank by confidence × score / 5;
  confidence only    — confident learning's self-confidence: flag prediction != label, rank by
                        1 - p(label).

Prints precision, recall, F1 and average precision per rate and method. ``--shortcut 0.75``
uses the shortcut-bias model on shapes with the red dot on every image instead (it makes real
mistakes: dotted squares and triangles become "circle"), where a judge can tell a model error
(attention on the dot) from a label error; ``--judge`` picks the judge.

    python benchmarks/bench_mislabel.py [--n 300] [--seed 11] [--shortcut 0.75] [--judge offline:groundtruth]
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import pandas as pd

import vlmxplain as vx
from vlmxplain import models as vxmod


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--rates", type=float, nargs="+", default=[0.05, 0.10, 0.20])
    parser.add_argument("--shortcut", type=float, default=None, help="shortcut-bias model rate (dot on all images)")
    parser.add_argument("--judge", default="offline:insertion-deletion")
    args = parser.parse_args()
    clf = vxmod.shapes_model(progress=False) if args.shortcut is None else vxmod.shortcut_model(args.shortcut)
    extra = {} if args.shortcut is None else {"shortcut_on": "all"}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for rate in args.rates:
            data = vx.datasets.shapes(args.n, label_noise=rate, seed=args.seed, **extra)
            options = {"steps": 10} if args.judge == "offline:insertion-deletion" else {}
            run = vx.explain(clf, data, judge=args.judge, run_dir=Path(tmp) / f"noise-{rate:g}",
                             judge_options=options, progress=False, verbose=False, cache=False)
            report = vx.mislabel_report(run, "meta")
            rows.append(report.summary.reset_index().assign(noise=f"{rate:.0%}"))
    out = pd.concat(rows)[["noise", "method", "n", "n_mislabelled", "n_flagged", "precision", "recall", "f1",
                           "average_precision"]]
    model = "clean ShapesNet" if args.shortcut is None else f"shortcut ShapesNet (rate {args.shortcut:g}, dot on all)"
    print(f"shapes n={args.n}, seed {args.seed}, {model}, judge {args.judge}")
    print(out.to_string(index=False, float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
