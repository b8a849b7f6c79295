"""Offline judges: honest stand-ins for a VLM, labelled as such in every description.

* ``offline:insertion-deletion`` measures attention: the classifier re-scores the image as the
  map's most salient pixels are deleted (replaced by a textured blur, see
  :mod:`vlmxplain.masks.perturbation`) and as they are inserted back onto that baseline;
  ``score = 5 * clip(1/2 + (AUC_insertion - AUC_deletion) / (2 p), 0, 1)`` with ``p`` the
  confidence on the intact image. A map that points where the evidence is scores above 2.5 and
  its inverted map scores the mirror image below 2.5 (the two AUCs swap). It depends on the map's
  ranking of pixels only, not on alpha/beta.
* ``offline:groundtruth`` uses object masks (synthetic shapes set or user-supplied): the score
  follows the share of the visible region (the sigmoid mask M) that lies on the object:
  ``score = 5 * sum(M * object) / sum(M)``.
* ``offline:faithfulness`` (legacy, kept for old runs; not a faithfulness measure) re-classifies
  the black-masked image: ``score = 5 * min(1, p_masked / p_original)``. The black background is
  out of distribution, so the score mostly follows how much area the mask keeps: it ranks the
  true CAM above its inverted map on only 35/60 shapes images and 4/8 gallery photos.

They make every feature runnable without keys or network, and they are references against which
a VLM judge's scores can be checked.
"""
from __future__ import annotations

import time
from typing import Iterator, Sequence

import numpy as np

from ..core.records import Judgment
from ..core.fields import checked_judge
from ..core.specs import JudgeSpec
from ..masks.images import png_bytes
from ..masks.judge_input import JudgeInput
from ..masks.perturbation import DEFAULT_BASELINE, DEFAULT_STEPS, check_baseline, check_steps, is_blank_map, perturbation_curves
from ..masks.regions import energy_on_mask
from ..models.classifiers import Classifier
from .base import Judge, NeedsClassifier, iter_batches
from .registry import register_judge

NOT_A_VLM = "[offline {name} judge: a computed score, not a vision-language model]"


class FaithfulnessJudge(Judge):
    """Legacy: score = share of the predicted class's confidence that survives black masking, × 5.
    Not a faithfulness measure (see the module docstring); use ``offline:insertion-deletion``."""

    def __init__(self, classifier: Classifier, batch_size: int = 32) -> None:
        if classifier is None:
            raise NeedsClassifier("judge: offline:faithfulness needs the classifier (explain() passes it)")
        self.classifier = classifier
        self.batch_size = batch_size
        self.id = "offline:faithfulness"
        # The classifier's weights decide the answer, so they are part of the question.
        self.prompt_version = f"faithfulness-v1-{classifier.fingerprint}"

    def judge_many(self, items: Sequence[JudgeInput]) -> Iterator[tuple[int, Judgment]]:
        for start_batch in iter_batches(range(len(items)), self.batch_size):
            t0 = time.perf_counter()
            batch = [items[i] for i in start_batch]
            probs = self.classifier.predict_proba([it.masked for it in batch])
            latency = (time.perf_counter() - t0) / len(batch)
            for i, item, p in zip(start_batch, batch, probs):
                yield i, self._verdict(item, p, latency)

    def _verdict(self, item: JudgeInput, probs: np.ndarray, latency: float) -> Judgment:
        cls = item.predicted_class
        before, after = float(item.confidence), float(probs[cls])
        kept = float(np.mean(item.mask))
        retained = after / before if before > 0 else 0.0
        score = 5.0 * min(1.0, max(0.0, retained))
        masked_top = int(np.argmax(probs))
        names = self.classifier.class_names
        description = (
            f"{NOT_A_VLM.format(name='legacy masked-confidence')} With only the attended region visible "
            f"({kept:.0%} of the image kept), the classifier's confidence in '{item.predicted_name}' goes from "
            f"{before:.2f} to {after:.2f}; its top class on the masked image is '{names[masked_top]}'."
        )
        if retained >= 1:
            why = "The attended region alone supports the prediction at least as strongly as the full image."
        elif retained >= 0.5:
            why = f"The attended region carries most of the evidence ({retained:.0%} of the confidence retained)."
        else:
            why = (f"Most of the evidence lies outside the attended region: only {retained:.0%} of the "
                   "confidence survives masking.")
        return Judgment(
            judge_id=self.id, prompt_version=self.prompt_version, score=round(score, 4), description=description,
            justification=why, parse_path="offline", latency_s=latency,
            raw=f'{{"p_original": {before:.6f}, "p_masked": {after:.6f}, "kept_share": {kept:.6f}}}',
        )


class InsertionDeletionJudge(Judge):
    """Score from the insertion and deletion AUCs of the map (see the module docstring)."""

    def __init__(self, classifier: Classifier, baseline: str = DEFAULT_BASELINE, steps: int = DEFAULT_STEPS,
                 batch_size: int = 64) -> None:
        if classifier is None:
            raise NeedsClassifier("judge: offline:insertion-deletion needs the classifier (explain() passes it)")
        self.classifier = classifier
        self.baseline = check_baseline(baseline)
        self.steps = check_steps(steps)
        self.batch_size = int(batch_size)
        self.id = "offline:insertion-deletion"
        self.prompt_version = f"insdel-v1-{baseline}-{self.steps}-{classifier.fingerprint}"

    def view_bytes(self, item: JudgeInput) -> bytes:
        v = np.asarray(item.saliency, dtype=np.float16)
        return np.asarray(v.shape, dtype=np.int64).tobytes() + v.tobytes() + png_bytes(item.image) + \
            int(item.predicted_class).to_bytes(4, "little")

    def settings(self):
        out = super().settings()
        out.options = {"baseline": self.baseline, "steps": self.steps}
        return out

    def judge_many(self, items: Sequence[JudgeInput]) -> Iterator[tuple[int, Judgment]]:
        blank = [i for i, it in enumerate(items) if is_blank_map(it.saliency)]
        for i in blank:
            yield i, Judgment.failure(self.id, self.prompt_version, "no attention: the map has no contrast",
                                      parse_path="offline")
        live = [i for i in range(len(items)) if i not in set(blank)]
        for chunk in iter_batches(live, max(1, self.batch_size // (2 * self.steps + 3))):
            t0 = time.perf_counter()
            batch = [items[i] for i in chunk]
            c = perturbation_curves(self.classifier, [it.image for it in batch], [it.saliency for it in batch],
                                    [it.predicted_class for it in batch], baseline=self.baseline, steps=self.steps,
                                    batch_size=self.batch_size)
            latency = (time.perf_counter() - t0) / len(batch)
            for k, i in enumerate(chunk):
                yield i, self._verdict(items[i], float(c.full[k]), float(c.insertion_auc[k]),
                                       float(c.deletion_auc[k]), latency)

    def _verdict(self, item: JudgeInput, p: float, ins: float, dele: float, latency: float) -> Judgment:
        gap = (ins - dele) / max(p, 1e-12)
        score = 5.0 * min(1.0, max(0.0, 0.5 + 0.5 * gap))
        description = (
            f"{NOT_A_VLM.format(name='insertion-deletion')} The classifier's confidence in "
            f"'{item.predicted_name}' is {p:.2f} on the intact image; inserting the map's most salient pixels "
            f"first onto a {self.baseline.replace('_', '+')} baseline gives an area of {ins:.3f}, deleting them "
            f"first {dele:.3f}."
        )
        if gap > 0.5:
            why = "The prediction depends on the attended region: it appears quickly when inserted and vanishes when deleted."
        elif gap > 0:
            why = "The attended region carries more of the evidence than the rest of the image, but not by much."
        else:
            why = "The rest of the image carries more of the evidence than the attended region."
        return Judgment(
            judge_id=self.id, prompt_version=self.prompt_version, score=round(score, 4), description=description,
            justification=why, parse_path="offline", latency_s=latency,
            raw=f'{{"p_original": {p:.6f}, "insertion_auc": {ins:.6f}, "deletion_auc": {dele:.6f}}}',
        )


class GroundTruthJudge(Judge):
    """Score = share of the visible region (mask M) on the object, × 5. Needs object masks."""

    id = "offline:groundtruth"
    prompt_version = "groundtruth-v1"

    def view_bytes(self, item: JudgeInput) -> bytes:
        obj = b"" if item.object_mask is None else np.packbits(np.asarray(item.object_mask, bool)).tobytes()
        shape = np.asarray(item.mask.shape, dtype=np.int64).tobytes()
        return shape + np.asarray(item.mask, dtype=np.float16).tobytes() + obj

    def judge_many(self, items: Sequence[JudgeInput]) -> Iterator[tuple[int, Judgment]]:
        for i, item in enumerate(items):
            yield i, self._verdict(item)

    def _verdict(self, item: JudgeInput) -> Judgment:
        if item.object_mask is None:
            return Judgment.failure(self.id, self.prompt_version, "no object mask for this sample")
        obj = np.asarray(item.object_mask, dtype=bool)
        if obj.shape != item.mask.shape:
            return Judgment.failure(
                self.id, self.prompt_version, f"object mask shape {obj.shape} != image shape {item.mask.shape}"
            )
        share = energy_on_mask(item.mask, obj)
        coverage = float((item.mask * obj).sum() / max(obj.sum(), 1))
        description = (
            f"{NOT_A_VLM.format(name='ground-truth')} {share:.0%} of the visible region lies on the labelled "
            f"object, and {coverage:.0%} of the object is visible."
        )
        why = (
            "The attention sits on the object." if share >= 0.7 else
            "The attention is split between the object and its surroundings." if share >= 0.3 else
            "The attention is mostly off the object (background or a shortcut)."
        )
        return Judgment(
            judge_id=self.id, prompt_version=self.prompt_version, score=round(5.0 * share, 4),
            description=description, justification=why, parse_path="offline",
            raw=f'{{"visible_share_on_object": {share:.6f}, "object_coverage": {coverage:.6f}}}',
        )


def _check_offline(spec: JudgeSpec) -> None:
    checked_judge(spec)  # a known offline judge (the names live in core.catalog)


@register_judge("offline", check=_check_offline)
def _make_offline(spec: JudgeSpec, classifier: Classifier | None = None, **options) -> Judge:
    if spec.model.lower() == "faithfulness":
        return FaithfulnessJudge(classifier, **options)
    if spec.model.lower() == "insertion-deletion":
        return InsertionDeletionJudge(classifier, **options)
    if options:
        raise ValueError(f"judge: offline:groundtruth takes no options, got {len(options)} "
                         f"(named {', '.join(sorted(map(str, options)))})")
    return GroundTruthJudge()
