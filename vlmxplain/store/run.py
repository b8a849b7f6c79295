"""A finished or interrupted run, read back from its run directory.

``Run`` is a read-mostly view over the :class:`~vlmxplain.store.RunStore`: the per-sample
table, quadrants at any threshold, skipped inputs, and everything a panel or figure needs for
one sample (image, raw CAM → mask/overlay for any alpha/beta), without the dataset or the
classifier.
"""
from __future__ import annotations

import io
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from ..core.checks import validate_mask_params
from ..core.quadrants import QuadrantSummary, quadrant_column, quadrant_summary
from ..core.records import RunConfig, RunView
from ..core.specs import JudgeSpec
from ..core.text import csv_safe
from ..masks.judge_input import JudgeInput, make_judge_input
from .batch_jobs import BatchJobs
from .metrics_table import with_metrics
from .mislabel import mislabel_suspects
from .run_store import RunStore

TABLE_COLUMNS = [
    "idx", "id", "path", "label", "targets", "target_names", "prediction", "predicted_name", "confidence",
    "correct", "score", "judge_status", "quadrant", "judge", "description", "justification", "error",
    "parse_path", "input_tokens", "output_tokens", "requests", "latency_s", "cached", "truncated",
]


class Run:
    """Results of one run directory. Open one with :func:`open_run`."""

    def __init__(self, run_dir: str | Path, store: RunStore | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.store = store if store is not None else RunStore.open_existing(run_dir)
        self.last_summary = None

    # ------------------------------------------------------------------ configuration
    @property
    def config(self) -> RunConfig:
        """What defines the run: classifier, dataset, CAM method, library versions (typed)."""
        config = self.store.run_config
        if config is None:
            raise ValueError(f"run_dir: {self.run_dir} holds no finished set-up (explain() never got going)")
        return config

    @property
    def view(self) -> RunView:
        """The current judge, alpha, beta and threshold (what :attr:`table` shows)."""
        view = self.store.view
        if view is None:
            raise ValueError(f"run_dir: {self.run_dir} holds no finished set-up (explain() never got going)")
        return view

    @cached_property
    def class_names(self) -> list[str]:
        """The classifier's class names (fixed for a run: a run has one classifier)."""
        return list(self.config.classifier.class_names)

    @property
    def judged_at_random(self) -> bool | None:
        """True when every call that judged this run took the shuffled order, so what is judged is
        a random sample of its samples however far it got; False when one took the dataset's order;
        None when the run does not say (written by an older vlmxplain)."""
        used = self.store.get_config("judging_orders")
        return None if not used else set(used) == {"shuffled"}

    @property
    def cam_method(self) -> str:
        return self.config.cam

    @property
    def judge(self) -> str:
        """The current judge's spec."""
        return self.view.judge.judge

    @property
    def alpha(self) -> float:
        return self.view.alpha

    @property
    def beta(self) -> float:
        return self.view.beta

    @property
    def threshold(self) -> float:
        return self.view.threshold

    # ------------------------------------------------------------------ tables
    @property
    def table(self) -> pd.DataFrame:
        """One row per sample for the run's current judge, alpha and beta."""
        return self.table_for()

    def _setting(self, judge, alpha, beta, prompt_version) -> tuple[str, str | None, float, float]:
        view = self.view
        judge = str(judge) if judge else view.judge.judge
        if prompt_version is None and judge == view.judge.judge:
            prompt_version = view.judge.prompt_version
        return (judge, prompt_version, view.alpha if alpha is None else alpha, view.beta if beta is None else beta)

    def table_for(
        self, judge: str | None = None, alpha: float | None = None, beta: float | None = None,
        prompt_version: str | None = None, threshold: float | None = None,
    ) -> pd.DataFrame:
        """The per-sample table for another judge / alpha / beta judged on this run (with the stored
        faithfulness metrics as extra columns, see :func:`vlmxplain.metrics.evaluate`).

        With repeated sampling (``repeats=n``) a row is answer 0 — score, text and quadrant of one
        real answer — and ``score_mean``, ``score_sd``, ``n_answers`` over the ok answers are added;
        :meth:`repeats` has every answer."""
        judge, prompt_version, alpha, beta = self._setting(judge, alpha, beta, prompt_version)
        judgments = self.store.judgments(judge, prompt_version, alpha, beta)
        df = self._frame(judgments[judgments["repeat"] == 0].drop_duplicates("id", keep="last"), threshold)
        df = df[TABLE_COLUMNS].set_index("id", drop=False).rename_axis(None)
        if (judgments["repeat"] > 0).any():
            ok = judgments[judgments["judge_status"] == "ok"].groupby("id")["score"]
            df = df.join(pd.DataFrame({"score_mean": ok.mean(), "score_sd": ok.std(ddof=1), "n_answers": ok.size()}))
            df["n_answers"] = df["n_answers"].fillna(0).astype(int)
        return with_metrics(df, self.store)

    def repeats(self, judge: str | None = None, alpha: float | None = None, beta: float | None = None,
                prompt_version: str | None = None, threshold: float | None = None) -> pd.DataFrame:
        """Every answer of a judge setting, one row per (sample, prompt version, repeat): the long
        table of repeated sampling (columns of :attr:`table` plus ``repeat`` and ``prompt_version``;
        the quadrant of each answer)."""
        judge, prompt_version, alpha, beta = self._setting(judge, alpha, beta, prompt_version)
        judgments = self.store.judgments(judge, prompt_version, alpha, beta)
        df = self._frame(judgments, threshold, how="inner")
        cols = ["id", "repeat", "prompt_version", *[c for c in TABLE_COLUMNS if c != "id"]]
        return df[cols].sort_values(["idx", "prompt_version", "repeat"]).reset_index(drop=True)

    def _frame(self, judgments: pd.DataFrame, threshold: float | None, how: str = "left") -> pd.DataFrame:
        """Samples and predictions joined with ``judgments``, with the derived columns of :attr:`table`."""
        names = self.class_names
        samples = self.store.samples().drop(columns=["meta"])
        cams = self.store.cams()[["id", "prediction", "confidence"]]
        keep = ["id", "score", "judge_status", "judge", "description", "justification", "error", "parse_path",
                "input_tokens", "output_tokens", "requests", "latency_s", "cached", "truncated", "repeat",
                "prompt_version"]
        df = samples.merge(cams, on="id", how="left").merge(judgments[keep], on="id", how=how)
        skipped = self.store.skipped_ids()
        status = df["judge_status"].fillna("pending").replace({"not_sent": "pending", "rejected": "failed"}).astype(object)
        df["judge_status"] = status.mask(df["id"].isin(skipped), "skipped")
        df["prediction"] = df["prediction"].astype("Int64")
        df["predicted_name"] = [names[int(p)] if pd.notna(p) and names else None for p in df["prediction"]]
        df["target_names"] = [[names[t] for t in ts] if names else [] for ts in df["targets"]]
        df["correct"] = pd.Series(
            [None if (pd.isna(p) or not ts) else int(p) in ts for p, ts in zip(df["prediction"], df["targets"])],
            index=df.index, dtype=object,
        )
        df["score"] = pd.to_numeric(df["score"], errors="coerce")
        df["cached"] = df["cached"].fillna(0).astype(bool)
        df["truncated"] = df["truncated"].fillna(0).astype(bool)  # a judge text was cut to the size cap
        df["quadrant"] = quadrant_column(df, self.threshold if threshold is None else threshold)
        return df

    def to_csv(self, path: str | Path, table: pd.DataFrame | None = None) -> Path:
        """Write :attr:`table` (or ``table``) as CSV that is safe to open in a spreadsheet: judge
        text that starts like a formula (``= + - @``) is written as text (``'`` prefixed)."""
        path = Path(path)
        csv_safe(self.table if table is None else table).to_csv(path, index=False)
        return path

    def quadrants(self, threshold: float | None = None, by: str = "label", **table_filters) -> QuadrantSummary:
        """Quadrant counts and shares, overall and per class (threshold adjustable after the fact)."""
        return quadrant_summary(self.table_for(**table_filters), self.threshold if threshold is None else threshold, by)

    def mislabel_suspects(self, threshold: float | None = None, **table_filters) -> pd.DataFrame:
        """Samples whose label may be wrong, most suspect first: a confident prediction of another
        class whose attention the judge finds good (Wrong-High is ``flagged``); see
        :mod:`vlmxplain.store.mislabel`. ``vx.mislabel_report(run, true_labels)`` scores it."""
        return mislabel_suspects(self.table_for(threshold=threshold, **table_filters), self.store.cams())

    @property
    def skipped(self) -> pd.DataFrame:
        """Inputs that could not be used, with the reason."""
        return self.store.skipped()

    def judgments(self) -> pd.DataFrame:
        """Every judgment in the run (all judges, alphas and betas)."""
        return self.store.judgments()

    def batch_jobs(self) -> pd.DataFrame:
        """The run's provider batch jobs (``openai-batch:``/``gemini-batch:`` judges): one row per job
        with its state and its requests counted as in_flight / judged / failed / resubmit."""
        return BatchJobs(self.store).table()

    def acceptance_rate(self) -> float | None:
        """Share of judged samples with a valid judgment (None before any judgment)."""
        status = self.table["judge_status"]
        judged = status.isin(["ok", "failed"])
        return float((status[judged] == "ok").mean()) if judged.any() else None

    def usage(self) -> dict[str, int]:
        """Requests and tokens this run paid for with the current judge, every repeat counted (cache
        hits cost nothing; a straggler sent twice, ``hedge=True``, is two requests)."""
        t = self.repeats()
        paid = t[~t["cached"] & t["judge_status"].isin(["ok", "failed"])]
        return {"requests": int(paid["requests"].fillna(1).sum()),
                "input_tokens": int(paid["input_tokens"].fillna(0).sum()),
                "output_tokens": int(paid["output_tokens"].fillna(0).sum())}

    def cost(self, prices: dict | None = None):
        """:class:`~vlmxplain.judges.vlm.CostEstimate` of :meth:`usage` in USD (``prices`` overrides the
        judge's recorded ``price`` option, which overrides the table)."""
        from ..judges.vlm.cost import usage_cost

        u = self.usage()
        recorded = self.view.judge.options.get("price")
        if prices is None and recorded:
            prices = {JudgeSpec.parse(self.judge).model: recorded}
        return usage_cost(self.judge, u["requests"], u["input_tokens"], u["output_tokens"], prices=prices)

    # ------------------------------------------------------------------ one sample
    def _preview(self, sample_id: str) -> tuple[Image.Image, np.ndarray | None]:
        found = self.store.get_preview(sample_id)
        if found is None:
            raise KeyError(f"sample {sample_id!r} has no stored image in {self.run_dir} (skipped or pending?)")
        return Image.open(io.BytesIO(found[0])).convert("RGB"), found[1]

    def image(self, sample_id: str) -> Image.Image:
        """The stored working copy of the sample's image (what the judge saw, unmasked)."""
        return self._preview(sample_id)[0]

    def object_mask(self, sample_id: str) -> np.ndarray | None:
        found = self.store.get_preview(sample_id)
        return None if found is None else found[1]

    def cam(self, sample_id: str) -> dict:
        """Raw CAM record: map (h×w), prediction, confidence, top classes."""
        cam = self.store.get_cam(sample_id)
        if cam is None:
            raise KeyError(f"sample {sample_id!r} has no CAM in {self.run_dir}")
        return cam

    def judge_input(self, sample_id: str, alpha: float | None = None, beta: float | None = None) -> JudgeInput:
        """What a judge sees for this sample at any alpha/beta, derived from the stored CAM."""
        a, b = validate_mask_params(self.alpha if alpha is None else alpha, self.beta if beta is None else beta)
        sample = self.store.get_sample(sample_id)
        if sample is None:
            raise KeyError(f"no sample {sample_id!r} in {self.run_dir}")
        image, object_mask = self._preview(sample_id)
        return make_judge_input(sample_id, image, self.cam(sample_id), a, b, self.class_names,
                                label=sample["label"], object_mask=object_mask)

    def __len__(self) -> int:
        return self.store.sample_count()

    def __repr__(self) -> str:
        cfg, view = self.store.run_config, self.store.view
        if cfg is None or view is None:
            return f"Run({str(self.run_dir)!r}, samples={len(self)}, not set up)"
        return (f"Run({str(self.run_dir)!r}, samples={len(self)}, classifier={cfg.classifier.name!r}, "
                f"cam={cfg.cam!r}, judge={view.judge.judge!r}, alpha={view.alpha:g}, beta={view.beta:g})")


def open_run(run_dir: str | Path, readonly: bool | None = None) -> Run:
    """Reopen a finished or interrupted run; ``readonly`` (default: when its files cannot be
    written) opens it for reading only: nothing in the folder is touched."""
    return Run(run_dir, store=RunStore.open_existing(run_dir, readonly=readonly))
