"""``reliability(run)``: how far a judge agrees with itself, across prompts, and with other judges.

Read from the judgments a run already holds (``explain``/``rejudge`` with ``repeats``, a
``template``, other judges), at one alpha/beta; nothing is asked here. A *setting* is one judge
configuration (judge id + prompt version: model, template, temperature, input kind, ...).

- **Self-consistency** (settings with several answers per sample): per-sample mean and SD across
  repeats; Krippendorff's alpha (interval) with samples as units and answers as coders, with a
  bootstrap CI over samples; the mean within-sample SD with its CI; the share of samples whose
  quadrant flips between answers (Wilson CI).
- **Templates** (settings of one judge that differ only by prompt template): the per-sample SD
  of the score across templates, its mean over samples with a bootstrap CI, each template's mean
  score, and alpha across templates.
- **Inter-judge agreement** (every pair of settings): Krippendorff's alpha and Spearman's rho,
  each with a bootstrap CI; alpha over all settings at once.

A setting's score of a sample is the mean of its ok answers. Statistics come from
:mod:`.agreement` (alpha, correlations, bootstrap and Wilson intervals).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import pandas as pd

from ..core.records import JudgeSettings
from ..store import Run
from scipy import stats

from .agreement import _bootstrap_ci, _check_ci, _spearman, acceptance_rate, mean_ci
from .annotations import krippendorff_alpha

__all__ = ["Reliability", "reliability", "alpha_ci", "spearman_ci"]


def alpha_ci(matrix: np.ndarray, *, n_boot: int = 2000, ci: float = 0.95, seed: int = 0,
             level: str = "interval") -> tuple[float, float, float, str]:
    """Krippendorff's alpha of a units × coders matrix and a bootstrap CI over units (rows):
    ``(alpha, ci_low, ci_high, note)``."""
    m = np.asarray(matrix, dtype=float)
    est = krippendorff_alpha(m, level)  # type: ignore[arg-type]
    if not np.isfinite(est) or n_boot == 0 or len(m) < 3:
        return est, np.nan, np.nan, "" if np.isfinite(est) else "alpha undefined (no variation or no pairs)"

    def stat(rows: np.ndarray) -> float:
        return krippendorff_alpha(m[rows.astype(int)], level)  # type: ignore[arg-type]

    lo, hi, _, note = _bootstrap_ci((np.arange(len(m)),), stat, vectorized=False, n_boot=n_boot, ci=ci,
                                    ci_method="percentile", seed=seed)
    return est, lo, hi, note


def spearman_ci(x: np.ndarray, y: np.ndarray, *, n_boot: int = 2000, ci: float = 0.95,
                seed: int = 0) -> tuple[float, float, float, str]:
    """Spearman's rho and its paired bootstrap CI (the statistic of :func:`.agreement.correlations`,
    without the Pearson and Kendall rows): ``(rho, ci_low, ci_high, note)``."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return np.nan, np.nan, np.nan, "constant scores: correlation undefined"
    rho = float(stats.spearmanr(x, y).statistic)
    if n_boot == 0:
        return rho, np.nan, np.nan, ""
    lo, hi, _, note = _bootstrap_ci((x, y), _spearman, vectorized=True, n_boot=n_boot, ci=ci, ci_method="percentile",
                                    seed=seed)
    return rho, lo, hi, note


def setting_label(settings: JudgeSettings | None, judge: str, prompt_version: str) -> str:
    """A short readable name of a judge setting: the judge, and its template and temperature for a VLM."""
    if settings is None or not settings.is_vlm:
        return judge
    o = settings.options
    extra = [str(o.get("template", "")), f"t={o.get('temperature')}"]
    if settings.input_kind and settings.input_kind != "masked":
        extra.append(str(settings.input_kind))
    return f"{judge} [{', '.join(extra)}]"


def _without_template(prompt_version: str) -> str:
    """The part of a VLM prompt version that is not the template (input, size, detail, temperature)."""
    return prompt_version.split("|", 1)[1] if "|" in prompt_version else ""


@dataclass
class Reliability:
    """What :func:`reliability` found; every table has CIs where it has an estimate."""

    settings: pd.DataFrame  # one row per setting: label, judge, prompt_version, template, temperature, n, answers
    answers: pd.DataFrame  # long: label, id, repeat, score, quadrant (ok answers)
    per_sample: pd.DataFrame  # label, id, mean, sd, n_answers, flipped
    self_consistency: pd.DataFrame  # per setting with repeats: alpha (+CI), mean SD (+CI), flip share (+CI)
    templates: pd.DataFrame  # per sample and template group: score of each template, sd, range
    template_spread: pd.DataFrame  # per group: mean per-sample SD (+CI), alpha across templates (+CI)
    template_means: pd.DataFrame  # per group and template: mean score (+CI)
    judges: pd.DataFrame  # per pair of settings: alpha (+CI), spearman (+CI), n
    overall_alpha: tuple[float, float, float] | None = None  # alpha over every setting, CI
    notes: dict[str, str] = field(default_factory=dict)

    def matrix(self, statistic: str = "alpha") -> pd.DataFrame:
        """Settings × settings of ``alpha`` or ``spearman`` (1 on the diagonal)."""
        labels = list(self.settings["label"])
        out = pd.DataFrame(np.eye(len(labels)), index=labels, columns=labels)
        for r in self.judges.itertuples():
            out.loc[r.a, r.b] = out.loc[r.b, r.a] = getattr(r, statistic)
        return out

    def to_frame(self) -> pd.DataFrame:
        """One row per (part, what, statistic): estimate, ci_low, ci_high, n."""
        rows = []
        for r in self.self_consistency.itertuples():
            for stat, lo, hi in (("alpha", "alpha_ci_low", "alpha_ci_high"), ("mean_sd", "sd_ci_low", "sd_ci_high"),
                                 ("flip_share", "flip_ci_low", "flip_ci_high")):
                rows.append(dict(part="repeats", what=r.label, statistic=stat, estimate=getattr(r, stat),
                                 ci_low=getattr(r, lo), ci_high=getattr(r, hi), n=r.n))
        for r in self.template_spread.itertuples():
            for stat, lo, hi in (("mean_sd", "sd_ci_low", "sd_ci_high"), ("alpha", "alpha_ci_low", "alpha_ci_high")):
                rows.append(dict(part="templates", what=r.group, statistic=stat, estimate=getattr(r, stat),
                                 ci_low=getattr(r, lo), ci_high=getattr(r, hi), n=r.n))
        for r in self.judges.itertuples():
            for stat in ("alpha", "spearman"):
                rows.append(dict(part="judges", what=f"{r.a} vs {r.b}", statistic=stat, estimate=getattr(r, stat),
                                 ci_low=getattr(r, f"{stat}_ci_low"), ci_high=getattr(r, f"{stat}_ci_high"), n=r.n))
        if self.overall_alpha is not None:
            rows.append(dict(part="judges", what="all settings", statistic="alpha", estimate=self.overall_alpha[0],
                             ci_low=self.overall_alpha[1], ci_high=self.overall_alpha[2],
                             n=int(self.per_sample["id"].nunique())))
        return pd.DataFrame(rows, columns=["part", "what", "statistic", "estimate", "ci_low", "ci_high", "n"])

    def __repr__(self) -> str:
        return (f"Reliability({len(self.settings)} settings; {len(self.self_consistency)} with repeats, "
                f"{len(self.template_spread)} template groups, {len(self.judges)} judge pairs; .to_frame())")


def _answers(run: Run, alpha: float, beta: float, threshold: float | None,
             judges: list[str] | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every setting judged at alpha/beta (one row each) and its ok answers (long)."""
    recorded = {(s.judge, s.prompt_version): s for s in run.store.judge_settings()}
    pairs = run.store.judgments(alpha=alpha, beta=beta)[["judge", "prompt_version"]].drop_duplicates()
    if judges is not None:
        pairs = pairs[pairs["judge"].isin(judges)]
    rows, frames = [], []
    for judge, pv in pairs.itertuples(index=False):
        long = run.repeats(judge, alpha, beta, prompt_version=pv, threshold=threshold)
        long = long[long["judge_status"] == "ok"]
        if long.empty:
            continue
        s = recorded.get((judge, pv))
        o = s.options if s is not None else {}
        rows.append(dict(label=setting_label(s, judge, pv), judge=judge, prompt_version=pv,
                         template=o.get("template"), template_version=o.get("template_version"),
                         temperature=o.get("temperature"), n=long["id"].nunique(), answers=len(long),
                         max_repeats=int(long.groupby("id").size().max())))
        frames.append(long[["id", "repeat", "score", "quadrant", "correct"]].assign(judge=judge, prompt_version=pv))
    settings = pd.DataFrame(rows, columns=["label", "judge", "prompt_version", "template", "template_version",
                                           "temperature", "n", "answers", "max_repeats"])
    dup = settings["label"].duplicated(keep=False)  # settings that read the same: add their prompt version
    settings.loc[dup, "label"] = settings.loc[dup, "label"] + " " + settings.loc[dup, "prompt_version"]
    for k, frame in enumerate(frames):
        frame["label"] = settings["label"].iloc[k]
    answers = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["id", "repeat", "score", "quadrant", "correct", "judge", "prompt_version", "label"])
    return settings, answers


def reliability(run: Run, *, judges: list[str] | None = None, alpha: float | None = None, beta: float | None = None,
                threshold: float | None = None, n_boot: int = 2000, ci: float = 0.95, seed: int = 0) -> Reliability:
    """Self-consistency across repeats, score spread across prompt templates and inter-judge
    agreement of every judge setting stored in ``run`` at ``alpha``/``beta`` (default: the run's).
    ``judges`` restricts it to those judge ids. Parts without data say so in ``notes``."""
    _check_ci(n_boot, ci, "percentile")
    a = run.alpha if alpha is None else float(alpha)
    b = run.beta if beta is None else float(beta)
    settings, answers = _answers(run, a, b, threshold, [str(j) for j in judges] if judges else None)
    notes: dict[str, str] = {}
    if settings.empty:
        raise ValueError(f"run: no ok judgments in {run.run_dir} at alpha={a:g}, beta={b:g}"
                         + (f" for {judges}" if judges else ""))
    boot = dict(n_boot=n_boot, ci=ci, seed=seed)

    # -- self-consistency across repeats
    g = answers.groupby(["label", "id"])
    per_sample = pd.DataFrame({"mean": g["score"].mean(), "sd": g["score"].std(ddof=1), "n_answers": g.size(),
                               "flipped": g["quadrant"].nunique() > 1}).reset_index()
    per_sample["flipped"] = per_sample["flipped"].astype(object).where(per_sample["n_answers"] >= 2, None)
    rows = []
    for label in settings.loc[settings["max_repeats"] >= 2, "label"]:
        mine = answers[answers["label"] == label]
        wide = mine.pivot_table(index="id", columns="repeat", values="score")
        ps = per_sample[(per_sample["label"] == label) & (per_sample["n_answers"] >= 2)]
        est, lo, hi, note = alpha_ci(wide.to_numpy(), **boot)
        sd, sd_lo, sd_hi = mean_ci(ps["sd"].to_numpy(), **boot, min_n=3)
        known = ps.merge(mine.groupby("id")["correct"].first().rename("c").reset_index(), on="id")
        flips = known.loc[known["c"].notna(), "flipped"].astype(bool)
        flip = acceptance_rate(flips.to_numpy(), ci=ci) if len(flips) else None
        temperature = settings.loc[settings["label"] == label, "temperature"].iloc[0]
        if temperature == 0:  # a VLM asked at temperature 0: only the provider's nondeterminism can differ
            note = "; ".join(v for v in (note, "temperature 0: answers differ only by the provider's nondeterminism")
                             if v)
        rows.append(dict(label=label, n=len(ps), repeats=int(wide.shape[1]), alpha=est, alpha_ci_low=lo,
                         alpha_ci_high=hi, mean_sd=sd, sd_ci_low=sd_lo, sd_ci_high=sd_hi,
                         flip_share=flip.rate if flip else np.nan, flip_ci_low=flip.ci[0] if flip else np.nan,
                         flip_ci_high=flip.ci[1] if flip else np.nan, n_flipped=int(flips.sum()), note=note))
    if not rows:
        notes["repeats"] = ("no setting has several answers per sample: judge with repeats (e.g. vx.rejudge(run, "
                            "judge=..., repeats=5, judge_options={'temperature': 0.7}))")
    self_consistency = pd.DataFrame(rows, columns=[
        "label", "n", "repeats", "alpha", "alpha_ci_low", "alpha_ci_high", "mean_sd", "sd_ci_low", "sd_ci_high",
        "flip_share", "flip_ci_low", "flip_ci_high", "n_flipped", "note"])

    # -- spread across prompt templates (one judge, everything but the template equal)
    scores = per_sample.pivot(index="id", columns="label", values="mean")
    vlm = settings[settings["template"].notna()].assign(
        group=lambda d: d["judge"] + " [" + d["prompt_version"].map(_without_template) + "]")
    t_rows, spread_rows, mean_rows = [], [], []
    for group, members in vlm.groupby("group"):
        if members["template"].nunique() < 2:
            continue
        wide = scores[list(members["label"])].dropna()
        names = members["template"]  # custom templates share a name: their versions tell them apart
        wide.columns = list(members["template_version"] if names.duplicated().any() else names)
        sd = wide.std(axis=1, ddof=1)
        t_rows.append(wide.assign(group=group, sd=sd, range=wide.max(axis=1) - wide.min(axis=1)).reset_index())
        m, lo, hi = mean_ci(sd.to_numpy(), **boot, min_n=3)
        est, alo, ahi, note = alpha_ci(wide.to_numpy(), **boot)
        spread_rows.append(dict(group=group, n=len(wide), templates=wide.shape[1], mean_sd=m, sd_ci_low=lo,
                                sd_ci_high=hi, alpha=est, alpha_ci_low=alo, alpha_ci_high=ahi, note=note))
        for name in wide.columns:
            mm, mlo, mhi = mean_ci(wide[name].to_numpy(), **boot, min_n=3)
            mean_rows.append(dict(group=group, template=name, n=len(wide), mean=mm, ci_low=mlo, ci_high=mhi))
    if not spread_rows:
        notes["templates"] = ("no judge was run with several prompt templates: rejudge with "
                              "judge_options={'template': 'paper-strict'} and others (see PROMPT_TEMPLATES)")
    templates = pd.concat(t_rows, ignore_index=True) if t_rows else pd.DataFrame(columns=["id", "group", "sd", "range"])
    template_spread = pd.DataFrame(spread_rows, columns=["group", "n", "templates", "mean_sd", "sd_ci_low",
                                                         "sd_ci_high", "alpha", "alpha_ci_low", "alpha_ci_high", "note"])
    template_means = pd.DataFrame(mean_rows, columns=["group", "template", "n", "mean", "ci_low", "ci_high"])

    # -- inter-judge agreement between every pair of settings
    pair_rows = []
    for x, y in combinations(list(settings["label"]), 2):
        both = scores[[x, y]].dropna()
        row = dict(a=x, b=y, n=len(both), alpha=np.nan, alpha_ci_low=np.nan, alpha_ci_high=np.nan, spearman=np.nan,
                   spearman_ci_low=np.nan, spearman_ci_high=np.nan, note="")
        if len(both) < 3:
            row["note"] = f"only {len(both)} samples scored by both"
        else:
            row["alpha"], row["alpha_ci_low"], row["alpha_ci_high"], note = alpha_ci(both.to_numpy(), **boot)
            row["spearman"], row["spearman_ci_low"], row["spearman_ci_high"], rho_note = spearman_ci(
                both[x].to_numpy(), both[y].to_numpy(), **boot)
            row["note"] = "; ".join(v for v in (note, rho_note) if v)
        pair_rows.append(row)
    judges_frame = pd.DataFrame(pair_rows, columns=["a", "b", "n", "alpha", "alpha_ci_low", "alpha_ci_high", "spearman",
                                                    "spearman_ci_low", "spearman_ci_high", "note"])
    overall = None
    if len(settings) >= 2:
        overall = alpha_ci(scores.to_numpy(), **boot)[:3]
    else:
        notes["judges"] = "one judge setting only: judge the run with another (vx.rejudge(run, judge=...))"
    return Reliability(settings, answers, per_sample, self_consistency, templates, template_spread, template_means,
                       judges_frame, overall, notes)
