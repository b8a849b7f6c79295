"""CAM methods and target layers compared on one dataset: ``compare_cams(clf, data, methods, layers)``.

One run per (method, target layer) in a subdirectory of ``run_dir`` (:func:`~vlmxplain.explain`,
sharing one judgment cache; a rerun computes nothing), then the faithfulness metrics of every run
(:func:`~vlmxplain.evaluate`, stored in each run). :class:`CamComparison` gives

* ``table`` — one row per method/layer: mean judge score and every metric with a bootstrap CI,
  the insertion − deletion AUC gap (``gap``, the headline faithfulness figure), its win rate against
  the inverted map (insertion > deletion: the inverse swaps the two AUCs exactly) with a Wilson CI,
  the judge's own sanity-check win rate (``sanity=True``) and the quadrant shares;
* ``paired(metric)`` — paired differences to the best method on the same samples (bootstrap CI,
  Wilcoxon), so a reader sees which differences are real; ``findings`` says so in words, also
  when the best methods cannot be told apart;
* ``comparison(a, b)`` / ``transitions(a, b)`` — how samples move between quadrants
  (:class:`~vlmxplain.metrics.compare.Comparison`).
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Sequence

import numpy as np
import pandas as pd
from pydantic import BeforeValidator, Field
from scipy import stats

from ..core.catalog import cam_name, closest_values
from ..core.checks import check_run_dir, validate_threshold
from ..core.defaults import DEFAULT_ALPHA, DEFAULT_BETA, DEFAULT_THRESHOLD
from ..core.params import ParamsModel
from ..core.quadrants import QUADRANTS
from ..judges.registry import check_judge
from ..masks.perturbation import DEFAULT_BASELINE, DEFAULT_STEPS
from ..metrics.agreement import acceptance_rate, mean_ci
from ..metrics.compare import Comparison, compare
from ..metrics.evaluate import evaluate
from ..metrics.faithfulness import METRICS, check_metrics, variant_of
from ..metrics.sanity import sanity_check
from ..models import Classifier, load_classifier
from ..pipeline import explain
from ..store import JudgmentCache, Run
from ..store.metrics_table import column_name

__all__ = ["DEFAULT_METHODS", "QUICK_METRICS", "CamComparison", "CamMethodsParams", "check_layers", "check_methods", "compare_cams"]

#: Cheap methods (one forward and backward pass per batch); ``scorecam``/``ablationcam`` work too, slowly.
DEFAULT_METHODS = ("gradcam", "gradcam++", "layercam", "eigencam")
GAP = "gap"  # insertion_auc - deletion_auc per sample: higher = the map ranks what the model uses first
SCORE = "score"
WINS = "judge_wins_vs_inverted"  # with sanity=True: 1 where the judge scores the true map above its inverse


def check_methods(methods: Any) -> tuple[str, ...]:
    """Registry names of ``methods`` (a list, or one name), through the one CAM-name parser."""
    if isinstance(methods, str):
        methods = [methods]
    if not isinstance(methods, Sequence) or not methods:
        raise ValueError(f"methods: give a non-empty list of CAM method names, got {methods!r}")
    try:
        names = [cam_name(m) for m in methods]
    except ValueError as err:
        raise ValueError(f"methods: {str(err).removeprefix('cam: ')}") from None
    if len(set(names)) != len(names):
        raise ValueError(f"methods: each method once, got {list(methods)!r}")
    return tuple(names)


def _layer_list(layers: Any) -> tuple[str, ...] | None:
    if layers is None:
        return None
    if isinstance(layers, str):
        layers = [layers]
    if not isinstance(layers, Sequence) or not layers or not all(isinstance(x, str) and x.strip() for x in layers):
        raise ValueError(f"layers: give None (the classifier's target layer) or a non-empty list of dotted module "
                         f"names, got {layers!r}")
    if len(set(layers)) != len(layers):
        raise ValueError(f"layers: each layer once, got {list(layers)!r}")
    return tuple(x.strip() for x in layers)


def check_layers(classifier: Classifier, layers: Any) -> tuple[str, ...] | None:
    """``layers`` checked against the classifier's modules (``None``: its own target layer)."""
    names = _layer_list(layers)
    if names is None:
        return None
    modules = [n for n, _ in classifier.model.named_modules() if n]
    for name in names:
        if name not in modules:
            match = closest_values(name, modules)
            hint = f" (did you mean {match[0]!r}?)" if match else ""
            raise ValueError(f"layers: {classifier.name} has no module {name!r}{hint}")
    return names


def _metric_list(metrics: Any) -> tuple[str, ...]:
    try:
        return check_metrics(metrics)
    except ValueError as err:
        raise ValueError(str(err).removeprefix("metrics: ")) from None


Methods = Annotated[tuple[str, ...], BeforeValidator(check_methods)]
MetricNames = Annotated[tuple[str, ...], BeforeValidator(_metric_list)]
#: The notebook's default metrics: deletion/insertion AUC and the localisation metrics (no model pass).
QUICK_METRICS = ("deletion_auc", "insertion_auc", "pointing_game", "energy_on_object")
Layers = Annotated[tuple[str, ...] | None, BeforeValidator(_layer_list)]


class CamMethodsParams(ParamsModel):
    """What ``compare_cams`` compares (validated; errors name the parameter)."""

    methods: Methods = Field(DEFAULT_METHODS, description="CAM methods to compare (gradcam, gradcam++, xgradcam, "
                             "hirescam, layercam, eigencam, scorecam, ablationcam)")
    layers: Layers = Field(None, description="None: the classifier's target layer; or dotted module names")
    sanity: bool = Field(False, description="also ask the judge about each inverted map (doubles judge requests)")
    n_boot: int = Field(1000, ge=0, description="bootstrap resamples per CI")


@dataclass(frozen=True)
class Variant:
    """One compared (method, target layer); ``label`` names it in every table and figure."""

    method: str
    layer: str
    label: str

    @property
    def folder(self) -> str:
        return re.sub(r"[^a-z0-9.+_-]+", "-", self.label.lower().replace("@", "--"))


@dataclass
class CamComparison:
    """Runs of several CAM methods / target layers on the same samples (see module doc)."""

    runs: dict[str, Run]
    variants: list[Variant]
    samples: pd.DataFrame  # long: one row per (variant, sample): score, quadrant, metrics, gap
    table: pd.DataFrame  # one row per variant (index: label)
    metrics: tuple[str, ...]
    judge: str
    threshold: float
    n_boot: int = 1000
    ci: float = 0.95
    seed: int = 0
    summaries: dict[str, Any] = field(default_factory=dict)  # label → what explain() did this call
    _paired: dict = field(default_factory=dict, repr=False)

    @property
    def labels(self) -> list[str]:
        return [v.label for v in self.variants]

    def values(self, metric: str = GAP) -> pd.DataFrame:
        """Per-sample values of ``metric`` (``gap``, ``score`` or a metric name): samples × variants."""
        if metric not in self.samples:
            raise ValueError(f"metric: {metric!r} is not measured here; known: {', '.join(self._measures())}")
        return self.samples.pivot(index="id", columns="variant", values=metric)[self.labels]

    def _measures(self) -> list[str]:
        return [SCORE, GAP, *self.metrics]

    @staticmethod
    def higher_is_better(metric: str) -> bool:
        return metric in (SCORE, GAP) or METRICS[metric].higher_is_better

    def best(self, metric: str = GAP) -> str:
        """The label whose mean ``metric`` is best."""
        col = self.table[metric].dropna()
        if col.empty:
            raise ValueError(f"metric: {metric} is undefined for every method")
        return str(col.idxmax() if self.higher_is_better(metric) else col.idxmin())

    def paired(self, metric: str = GAP, against: str | None = None) -> pd.DataFrame:
        """Each other method minus ``against`` (default: the best by ``metric``) on the samples both
        measured: mean difference with a bootstrap CI, Wilcoxon p, and whether the CI excludes 0."""
        ref = against or self.best(metric)
        if ref not in self.labels:
            raise ValueError(f"against: {ref!r} is not one of {', '.join(self.labels)}")
        key = (metric, ref)
        if key in self._paired:
            return self._paired[key].copy()
        wide = self.values(metric)
        rows = []
        for label in self.labels:
            if label == ref:
                continue
            both = wide[[label, ref]].dropna()
            d = both[label] - both[ref]
            row = dict(variant=label, against=ref, metric=metric, n=len(both), mean_diff=np.nan, ci_low=np.nan,
                       ci_high=np.nan, wilcoxon_p=np.nan, note="")
            if len(both) >= 3:
                row["mean_diff"], row["ci_low"], row["ci_high"] = mean_ci(d, n_boot=self.n_boot, ci=self.ci, seed=self.seed)
                if (d == 0).all():
                    row["note"] = "identical on every sample"
                else:
                    row["wilcoxon_p"] = float(stats.wilcoxon(both[label], both[ref]).pvalue)
            else:
                row["note"] = f"only {len(both)} shared samples"
            rows.append(row)
        out = pd.DataFrame(rows, columns=["variant", "against", "metric", "n", "mean_diff", "ci_low", "ci_high",
                                          "wilcoxon_p", "note"])
        out["distinguishable"] = (out["ci_low"] > 0) | (out["ci_high"] < 0)
        self._paired[key] = out.set_index("variant")
        return self._paired[key].copy()

    def indistinguishable(self, metric: str = GAP) -> list[str]:
        """The best method and those whose paired CI against it includes 0."""
        p = self.paired(metric)
        return [self.best(metric), *p.index[~p["distinguishable"]]]

    @property
    def findings(self) -> list[str]:
        """What the table says, in words: the best by faithfulness and by the judge, and which
        differences are real."""
        notes = []
        for metric, what in ((GAP, "insertion - deletion AUC"), (SCORE, f"judge score ({self.judge})")):
            if len(self.labels) < 2 or self.table[metric].notna().sum() == 0:
                continue
            best = self.best(metric)
            row = self.table.loc[best]
            notes.append(f"best by {what}: {best} ({row[metric]:.3f}, {self.ci:.0%} CI {row[metric + '_ci_low']:.3f}"
                         f" to {row[metric + '_ci_high']:.3f})")
            tied = self.indistinguishable(metric)
            if len(tied) > 1:
                notes.append(f"  cannot be told apart from it (paired CI of the difference includes 0): "
                             f"{', '.join(tied[1:])}")
            else:
                notes.append("  better than every other method (every paired CI excludes 0)")
            paired = self.paired(metric)
            for label, r in paired[paired["distinguishable"] & (paired["wilcoxon_p"] > 0.05)].iterrows():
                notes.append(f"  {label}: the mean differs ({r.mean_diff:+.3f}, CI {r.ci_low:+.3f} to {r.ci_high:+.3f}) "
                             f"but the Wilcoxon signed-rank test does not (p {r.wilcoxon_p:.2f}): a few samples "
                             "carry the difference")
        gap = self.table[GAP]
        below = [lab for lab in self.labels if self.table.loc[lab, GAP + "_ci_high"] < 0]
        if below:
            notes.append(f"worse than their own inverse (gap CI below 0): {', '.join(below)}")
        if gap.notna().any() and not self.table.loc[self.best(GAP), GAP + "_ci_low"] > 0:
            notes.append("even the best method's gap CI includes 0: no method is shown to beat its inverted map")
        if len(self.labels) > 1 and self.table[SCORE].notna().any() and gap.notna().any():
            if self.best(SCORE) not in self.indistinguishable(GAP):
                notes.append(f"the judge's favourite ({self.best(SCORE)}) is not among the most faithful methods")
        return notes

    def comparison(self, a: str, b: str) -> Comparison:
        """``vx.compare`` of two methods' runs (at this comparison's threshold)."""
        for x in (a, b):
            if x not in self.runs:
                raise ValueError(f"variant: {x!r} is not one of {', '.join(self.labels)}")
        return compare(self.runs[a], self.runs[b], threshold=self.threshold)

    def transitions(self, a: str, b: str) -> pd.DataFrame:
        """Counts of samples by (quadrant with ``a``, quadrant with ``b``)."""
        return self.comparison(a, b).transitions

    @property
    def moved_shares(self) -> pd.DataFrame:
        """Variants × variants: the share of shared samples whose quadrant differs between the two."""
        q = self.samples.pivot(index="id", columns="variant", values="quadrant")[self.labels]
        out = pd.DataFrame(index=self.labels, columns=self.labels, dtype=float)
        for a in self.labels:
            for b in self.labels:
                if a == b:
                    out.loc[a, b] = 0.0
                    continue
                both = q[[a, b]].dropna()
                out.loc[a, b] = float((both[a] != both[b]).mean()) if len(both) else np.nan
        return out

    @property
    def quadrant_shares(self) -> pd.DataFrame:
        """Variants × quadrants: share of the variant's samples in each quadrant."""
        return self.table[list(QUADRANTS)]

    def __repr__(self) -> str:
        return f"CamComparison({', '.join(self.labels)}; judge {self.judge}; {self.samples['id'].nunique()} samples)"


def _variants(clf: Classifier, methods: tuple[str, ...], layers: tuple[str, ...] | None) -> list[Variant]:
    if layers is None:
        return [Variant(m, clf.target_layer_name, m) for m in methods]
    return [Variant(m, layer, f"{m}@{layer}") for layer in layers for m in methods]


def _at_layer(clf: Classifier, layer: str) -> Classifier:
    if layer == clf.target_layer_name:
        return clf
    return dataclasses.replace(clf, target_layer=clf.model.get_submodule(layer), target_layer_name=layer)


def _summary_row(v: Variant, s: pd.DataFrame, measures: list[str], n_boot: int, ci: float, seed: int) -> dict:
    row: dict[str, Any] = {"variant": v.label, "method": v.method, "layer": v.layer, "n": len(s),
                           "n_judged": int(s[SCORE].notna().sum())}
    for m in measures:
        row[m], row[f"{m}_ci_low"], row[f"{m}_ci_high"] = mean_ci(s[m], n_boot=n_boot, ci=ci, seed=seed)
    gap_wins = (s["insertion_auc"] > s["deletion_auc"])[s[GAP].notna()]
    judged_wins = s[WINS].dropna().astype(bool) if WINS in s else None
    for name, wins in (("win_vs_inverted", gap_wins), (WINS, judged_wins)):
        if wins is None:
            continue
        rate = acceptance_rate(wins.to_numpy(), ci=ci) if len(wins) else None
        row[name] = rate.rate if rate else np.nan
        row[f"{name}_ci_low"], row[f"{name}_ci_high"] = rate.ci if rate else (np.nan, np.nan)
    for q in QUADRANTS:
        row[q] = float((s["quadrant"] == q).mean()) if len(s) else np.nan
    return row


def compare_cams(
    classifier: Classifier | str, data: Any, methods: Sequence[str] = DEFAULT_METHODS, layers: Sequence[str] | None = None,
    *, judge: str = "offline:insertion-deletion", run_dir: str | Path = "runs/cam_methods",
    alpha: float = DEFAULT_ALPHA, beta: float = DEFAULT_BETA, threshold: float = DEFAULT_THRESHOLD,
    metrics: Sequence[str] | str | None = None, baseline: str = DEFAULT_BASELINE, steps: int = DEFAULT_STEPS,
    sanity: bool = False, judge_options: dict | None = None, cam_options: dict[str, dict] | None = None,
    cache: JudgmentCache | str | Path | bool = True, limit: int | None = None, n_boot: int = 1000,
    ci: float = 0.95, seed: int = 0, progress: bool = False,
) -> CamComparison:
    """Explain ``data`` with each of ``methods`` at each of ``layers`` (default: the classifier's
    target layer) into ``run_dir/<method>[--<layer>]``, evaluate the faithfulness ``metrics``
    (default: evaluate's, always including deletion and insertion AUC) and compare (module doc).

    Everything is checked before any work (method names by the CAM-name parser, layers against
    the model, the judge spec). Resumable: a rerun reuses every CAM, judgment and metric.
    ``sanity=True`` also judges each sample's inverted map (:func:`~vlmxplain.sanity_check`:
    a judge's win rate; it doubles the judge's requests). ``cam_options``: per method name.
    """
    if isinstance(classifier, str):
        classifier = load_classifier(classifier)
    if not isinstance(classifier, Classifier):
        raise ValueError(f"classifier: a Classifier (vx.load_classifier) or a name, got a {type(classifier).__name__}")
    p = CamMethodsParams.check(methods=methods, layers=layers, sanity=sanity, n_boot=n_boot)
    chosen_layers = check_layers(classifier, p.layers)
    judge = str(check_judge(judge))
    cut = validate_threshold(threshold)
    names = tuple(dict.fromkeys(("deletion_auc", "insertion_auc", *check_metrics(metrics))))
    unknown = set(cam_options or {}) - set(p.methods)
    if unknown:
        raise ValueError(f"cam_options: keyed by method name; {sorted(unknown)} are not among {list(p.methods)}")
    root = Path(check_run_dir(run_dir))
    the_cache = cache if isinstance(cache, JudgmentCache) else (
        None if cache is False else JudgmentCache(None if cache is True else cache))
    variants = _variants(classifier, p.methods, chosen_layers)
    runs, summaries, frames = {}, {}, []
    for v in variants:
        clf = _at_layer(classifier, v.layer)
        run = explain(clf, data, cam=v.method, alpha=alpha, beta=beta, judge=judge, run_dir=root / v.folder,
                      threshold=cut, limit=limit, judge_options=judge_options, cam_options=(cam_options or {}).get(
                          v.method), cache=the_cache if the_cache is not None else False, progress=progress,
                      verbose=False)
        evaluate(run, names, classifier=clf, baseline=baseline, steps=steps, progress=progress)
        t = run.table_for(threshold=cut)
        t = t[t["id"].isin(run.store.cam_ids())]
        s = pd.DataFrame({"variant": v.label, "id": t["id"], SCORE: t["score"], "quadrant": t["quadrant"],
                          "correct": t["correct"]})
        for m in names:
            col = column_name(m, variant_of(m, baseline, steps))
            s[m] = pd.to_numeric(t[col], errors="coerce") if col in t else np.nan
        s[GAP] = s["insertion_auc"] - s["deletion_auc"]
        if p.sanity:
            check = sanity_check(run, judge, controls=("inverted",), classifier=clf, judge_options=judge_options,
                                 cache=the_cache if the_cache is not None else False, progress=progress)
            both = check.table[["true", "inverted"]].dropna()
            s[WINS] = s["id"].map((both["true"] > both["inverted"]).astype(float))
        runs[v.label], summaries[v.label] = run, run.last_summary
        frames.append(s.reset_index(drop=True))
    samples = pd.concat(frames, ignore_index=True)
    measures = [SCORE, GAP, *names]
    rows = [_summary_row(v, samples[samples["variant"] == v.label], measures, p.n_boot, ci, seed) for v in variants]
    table = pd.DataFrame(rows).set_index("variant")
    return CamComparison(runs, variants, samples, table, names, judge, cut, p.n_boot, ci, seed, summaries)
