"""The sanity check a judge must pass (Adebayo et al. 2018, "Sanity checks for saliency maps"):
it scores each sample's true CAM above control maps that cannot be right —

* ``inverted`` — the CAM's inverse ``1 - v`` (points everywhere the CAM does not);
* ``randomised`` — the CAM of the same method on a copy of the classifier with every layer
  re-initialised (a map that no longer depends on what the model learned).

Reported as win rates (true > control, ties lose) with Wilson intervals. Control judgments go
through the content-addressed :class:`~vlmxplain.store.JudgmentCache`, so a VLM judge is never
asked the same question twice and an interrupted check resumes; they are not written into the run.
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ..cams import compute_cams
from ..core.selection import in_order
from ..judges import Judge, NeedsClassifier, make_judge
from ..masks.judge_input import JudgeInput, make_judge_input
from ..masks.perturbation import inverted, shows_no_attention
from ..models import Classifier
from ..store import JudgmentCache, Run
from .agreement import acceptance_rate
from .evaluate import run_classifier

CONTROLS: tuple[str, ...] = ("inverted", "randomised")


def randomised_classifier(classifier: Classifier, seed: int = 0) -> Classifier:
    """A copy of ``classifier`` with every parameter re-initialised (``reset_parameters``) and
    BatchNorm statistics reset; the original is untouched."""
    model = copy.deepcopy(classifier.model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in model.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
            if hasattr(module, "reset_running_stats"):
                module.reset_running_stats()
    return dataclasses.replace(classifier, model=model, target_layer=model.get_submodule(classifier.target_layer_name),
                               name=f"{classifier.name}-randomised")


@dataclass
class SanityCheck:
    """Per-sample scores (``table``: true and one column per control) and win rates (``summary``)."""

    judge: str
    table: pd.DataFrame
    summary: pd.DataFrame

    @property
    def passed(self) -> bool:
        """True when every control's win rate has a lower CI bound above 0.5."""
        return bool((self.summary["ci_low"] > 0.5).all())

    def __repr__(self) -> str:
        rows = "; ".join(f"vs {r.control}: {r.win_rate:.0%} [{r.ci_low:.0%}, {r.ci_high:.0%}] of {r.n}"
                         for r in self.summary.itertuples())
        return f"SanityCheck({self.judge}: true CAM wins {rows})"


def win_rates(table: pd.DataFrame, controls: Sequence[str], ci: float = 0.95) -> pd.DataFrame:
    """Win rate of ``table['true']`` over each control column, ties counted as losses."""
    rows = []
    for control in controls:
        both = table[["true", control]].dropna()
        wins = both["true"] > both[control]
        row = dict(control=control, n=len(both), wins=int(wins.sum()), ties=int((both["true"] == both[control]).sum()),
                   mean_true=float(both["true"].mean()) if len(both) else np.nan,
                   mean_control=float(both[control].mean()) if len(both) else np.nan,
                   win_rate=np.nan, ci_low=np.nan, ci_high=np.nan,
                   n_missing=len(table) - len(both))  # no attention (never judged) or a failed judgment
        if len(both):
            rate = acceptance_rate(wins.to_numpy(), ci=ci)
            row.update(win_rate=rate.rate, ci_low=rate.ci[0], ci_high=rate.ci[1])
        rows.append(row)
    return pd.DataFrame(rows)


def _judge_all(judge: Judge, items: list[JudgeInput], cache: JudgmentCache | None) -> list[float]:
    scores: list[float] = [np.nan] * len(items)
    ask = []
    for k, item in enumerate(items):
        if shows_no_attention(item):
            continue  # never sent: a blank map has no attention to judge
        hit = cache.get(judge.cache_key(item)) if cache is not None else None
        if hit is not None:
            scores[k] = hit.score if hit.ok else np.nan
        else:
            ask.append(k)
    for j, judgment in judge.judge_many([items[k] for k in ask]):
        k = ask[j]
        if cache is not None and judgment.sent:
            cache.put(judge.cache_key(items[k]), judgment)
        scores[k] = judgment.score if judgment.ok else np.nan
    return scores


def sanity_check(
    run: Run, judge: str | Judge | None = None, *, controls: Sequence[str] = CONTROLS,
    classifier: Classifier | None = None, alpha: float | None = None, beta: float | None = None,
    judge_options: dict | None = None, cache: JudgmentCache | str | Path | bool = True, seed: int = 0,
    limit: int | None = None, chunk: int = 16, ci: float = 0.95, progress: bool = True,
) -> SanityCheck:
    """Judge each sample's true CAM and its control maps (default: the run's judge, alpha, beta).
    ``limit=n`` checks n samples drawn at random (the run's shuffled order, the same on every call)."""
    unknown = [c for c in controls if c not in CONTROLS]
    if unknown or not controls:
        raise ValueError(f"controls: unknown {unknown or 'empty'}; known: {', '.join(CONTROLS)}")
    a = run.alpha if alpha is None else alpha
    b = run.beta if beta is None else beta
    spec = judge or run.judge
    clf = classifier
    try:
        the_judge = make_judge(spec, classifier=clf, **(judge_options or {}))
    except NeedsClassifier:
        clf = run_classifier(run, classifier)
        the_judge = make_judge(spec, classifier=clf, **(judge_options or {}))
    if "randomised" in controls and clf is None:
        clf = run_classifier(run, classifier)
    rand = randomised_classifier(clf, seed) if "randomised" in controls else None
    ids = in_order(sorted(run.store.cam_ids()), "shuffled")[: limit if limit is not None else None]  # a random subset
    the_cache = cache if isinstance(cache, JudgmentCache) else (
        None if cache is False else JudgmentCache(None if cache is True else cache))
    names = run.class_names
    columns: dict[str, list[float]] = {"true": [], **{c: [] for c in controls}}
    try:
        for start in tqdm(range(0, len(ids), chunk), desc=f"sanity check [{the_judge.id}]", unit="batch",
                          disable=not progress):
            part = ids[start : start + chunk]
            cams = [run.cam(i) for i in part]
            images = [run.image(i) for i in part]
            maps = {"true": [c["map"] for c in cams]}
            if "inverted" in controls:
                maps["inverted"] = [inverted(c["map"]) for c in cams]
            if rand is not None:
                res = compute_cams(rand, images, run.cam_method, targets=[c["target"] for c in cams],
                                   method_options=run.config.cam_options)
                maps["randomised"] = list(res.maps)
            for kind, kind_maps in maps.items():
                items = [make_judge_input(i, im, {**c, "map": m}, a, b, names, object_mask=run.object_mask(i))
                         for i, im, c, m in zip(part, images, cams, kind_maps)]
                columns[kind].extend(_judge_all(the_judge, items, the_cache))
    finally:
        the_judge.close()
        if the_cache is not None and the_cache is not cache:
            the_cache.close()
    table = pd.DataFrame(columns, index=pd.Index(ids, name="id"))
    return SanityCheck(the_judge.id, table, win_rates(table, controls, ci))
