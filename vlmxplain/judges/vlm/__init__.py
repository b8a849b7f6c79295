"""Vision-language-model judges: OpenAI, Gemini and OpenAI-compatible local servers.

Specs (parsed by :class:`vlmxplain.core.specs.JudgeSpec`)::

    openai:gpt-4o-mini                                   # OPENAI_API_KEY (paper's model; retiring)
    gemini:gemini-2.5-flash                              # GOOGLE_API_KEY / GEMINI_API_KEY
    openai-compatible:qwen2.5-vl@http://localhost:11434/v1   # Ollama, vLLM, LM Studio

Options (all optional, see :class:`VLMOptions`): ``input_kind`` (masked | overlay | both),
``image_size`` (512), ``detail``, ``temperature`` (0), ``template`` (a name in
:data:`PROMPT_TEMPLATES`, prompt text, or a :class:`PromptTemplate`), ``concurrency`` (8),
``rpm``, ``tpm``, ``timeout`` (120 s), ``max_retries`` (4), ``max_output_tokens``, ``base_url``,
``hedge`` (send the end of the stream's stragglers twice, :mod:`.flight`), and ``api_key`` (never
stored or shown). ``openai-batch:<model>`` / ``gemini-batch:<model>`` judge
through the providers' batch APIs (:mod:`.batch`; options also :class:`BatchOptions`). :func:`estimate_cost` prices a run before it starts;
:func:`usage_cost` prices recorded token usage (``Run.cost()``).
"""
from __future__ import annotations

from typing import Any

from ...core.specs import JudgeSpec
from ..registry import register_judge
from .batch import BatchJudge, BatchOptions
from .batch_apis import GeminiBatchAPI, OpenAIBatchAPI
from .core import CallError, Reply, VLMJudge
from .options import VLMOptions
from .cost import PRICES, CostEstimate, ModelPrice, actual_cost, estimate_cost, usage_cost
from .gemini_backend import GeminiJudge
from .keys import MissingKeyError
from .openai_backend import OpenAICompatibleJudge, OpenAIJudge
from .parsing import ParseFailure, parse_judge_text
from .prompts import PAPER_RUBRIC, PROMPT_TEMPLATES, PromptTemplate

__all__ = [
    "BatchJudge", "BatchOptions", "CallError", "CostEstimate", "GeminiJudge", "MissingKeyError", "ModelPrice", "OpenAICompatibleJudge",
    "OpenAIJudge", "PAPER_RUBRIC", "PRICES", "PROMPT_TEMPLATES", "ParseFailure", "PromptTemplate", "Reply", "VLMJudge",
    "VLMOptions", "actual_cost", "estimate_cost", "parse_judge_text", "usage_cost",
]


@register_judge("openai")
def _openai(spec: JudgeSpec, classifier: Any = None, **options: Any) -> OpenAIJudge:
    return OpenAIJudge(spec, **options)


@register_judge("gemini")
def _gemini(spec: JudgeSpec, classifier: Any = None, **options: Any) -> GeminiJudge:
    return GeminiJudge(spec, **options)


@register_judge("openai-compatible")
def _openai_compatible(spec: JudgeSpec, classifier: Any = None, **options: Any) -> OpenAICompatibleJudge:
    return OpenAICompatibleJudge(spec, **options)


@register_judge("openai-batch")
def _openai_batch(spec: JudgeSpec, classifier: Any = None, **options: Any) -> BatchJudge:
    return BatchJudge(spec, OpenAIJudge, OpenAIBatchAPI, **options)


@register_judge("gemini-batch")
def _gemini_batch(spec: JudgeSpec, classifier: Any = None, **options: Any) -> BatchJudge:
    return BatchJudge(spec, GeminiJudge, GeminiBatchAPI, **options)
