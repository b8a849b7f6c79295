"""Token and dollar accounting for VLM judges: dry-run estimates and run totals.

Prices are USD per million tokens at standard (non-batch) rates as published by the providers
in 2025; they change — pass ``prices={"model": ModelPrice(...)}`` (or plain dicts) to override.
Image token counts follow the providers' published formulas:

- OpenAI *tile* models (gpt-4o, gpt-4o-mini): ``base`` tokens at ``detail="low"``; otherwise the
  image is fitted into 2048², its short side reduced to 768, and each 512-px tile adds ``tile``
  (gpt-4o-mini: 2,833 + 5,667 per tile; gpt-4o: 85 + 170).
- OpenAI *patch* models (gpt-4.1-mini/nano): 32-px patches, at most 1,536, times a multiplier.
- Gemini: 258 tokens per 768-px tile (one tile up to 384 px); ``media_resolution`` LOW = 64,
  MEDIUM/HIGH = 256.

Estimates, not invoices: the text part is counted at ~4 characters per token.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Iterable, Mapping

from ...core.records import Judgment
from ...core.specs import JudgeSpec
from .options import VLMOptions
from .prices import BATCH_DISCOUNT, ImageModel, ModelPrice
from .prompts import get_template

__all__ = ["BATCH_DISCOUNT", "PRICES", "CostEstimate", "ImageModel", "ModelPrice", "actual_cost", "cost_usd",
           "estimate_cost", "image_tokens", "lookup_price", "price_of", "text_tokens", "usage_cost"]

#: Built-in price table (USD / 1M tokens, standard tier). Override per call with ``prices=``.
PRICES: dict[str, ModelPrice] = {
    "gpt-4o-mini": ModelPrice(input_per_mtok=0.15, output_per_mtok=0.60, image_base=2833, image_tile=5667,
                              note="the paper's OpenAI judge; reported to leave the API in January 2027"),
    "gpt-4o": ModelPrice(input_per_mtok=2.50, output_per_mtok=10.00),
    "gpt-4.1": ModelPrice(input_per_mtok=2.00, output_per_mtok=8.00),
    "gpt-4.1-mini": ModelPrice(input_per_mtok=0.40, output_per_mtok=1.60, image="patch", patch_multiplier=1.62),
    "gpt-4.1-nano": ModelPrice(input_per_mtok=0.10, output_per_mtok=0.40, image="patch", patch_multiplier=2.46),
    "gemini-2.5-pro": ModelPrice(input_per_mtok=1.25, output_per_mtok=10.00, image="gemini", image_tile=258),
    "gemini-2.5-flash": ModelPrice(input_per_mtok=0.30, output_per_mtok=2.50, image="gemini", image_tile=258),
    "gemini-2.5-flash-lite": ModelPrice(input_per_mtok=0.10, output_per_mtok=0.40, image="gemini", image_tile=258),
    "gemini-2.0-flash": ModelPrice(input_per_mtok=0.10, output_per_mtok=0.40, image="gemini", image_tile=258),
    "gemini-1.5-flash": ModelPrice(input_per_mtok=0.075, output_per_mtok=0.30, image="gemini", image_tile=258,
                                   note="the paper's Gemini judge; shut down by Google"),
}

_FREE = ModelPrice(input_per_mtok=0.0, output_per_mtok=0.0, image="flat", flat_tokens=0,
                   note="local OpenAI-compatible server: no per-token price")
DEFAULT_OUTPUT_TOKENS = 300
CHARS_PER_TOKEN = 4.0


def text_tokens(text: str) -> int:
    """Rough token count of ``text`` (~4 characters per token)."""
    return int(math.ceil(len(text) / CHARS_PER_TOKEN))


def lookup_price(model: str, prices: Mapping[str, Any] | None = None, *, builtin: bool = True) -> ModelPrice | None:
    """Price for ``model`` in ``prices`` (then :data:`PRICES` if ``builtin``): exact name, else the
    longest key ``model`` starts with (dated snapshots such as ``gpt-4o-mini-2024-07-18``)."""
    table: dict[str, ModelPrice] = dict(PRICES) if builtin else {}
    for name, value in (prices or {}).items():
        table[name] = value if isinstance(value, ModelPrice) else ModelPrice(**value)
    if model in table:
        return table[model]
    matches = [k for k in table if model.startswith(k)]
    return table[max(matches, key=len)] if matches else None


def image_tokens(price: ModelPrice, width: int, height: int, detail: str | None = None) -> int:
    """Input tokens one image of ``width``×``height`` costs under ``price``'s image model."""
    if price.image == "flat":
        return price.flat_tokens
    if price.image == "gemini":
        if detail == "low":
            return 64
        if detail in ("medium", "high"):
            return 256
        if width <= 384 and height <= 384:
            return price.image_tile
        return math.ceil(width / 768) * math.ceil(height / 768) * price.image_tile
    if price.image == "patch":
        patches = math.ceil(width / 32) * math.ceil(height / 32)
        if patches > 1536:
            scale = math.sqrt(1536 * 32 * 32 / (width * height))
            patches = min(1536, math.ceil(width * scale / 32) * math.ceil(height * scale / 32))
        return int(math.ceil(patches * price.patch_multiplier))
    if detail == "low":
        return price.image_base
    w, h = float(width), float(height)
    if max(w, h) > 2048:
        s = 2048 / max(w, h)
        w, h = w * s, h * s
    if min(w, h) > 768:
        s = 768 / min(w, h)
        w, h = w * s, h * s
    return price.image_base + math.ceil(w / 512) * math.ceil(h / 512) * price.image_tile


def cost_usd(price: ModelPrice | None, input_tokens: float, output_tokens: float, batch: bool = False) -> float | None:
    if price is None:
        return None
    per_in, per_out = price.per_mtok(batch)
    return (input_tokens * per_in + output_tokens * per_out) / 1e6


@dataclass
class CostEstimate:
    """A dry-run (or actual) cost summary. ``usd`` is ``None`` when the model has no price."""

    judge: str
    requests: int
    input_tokens: int
    output_tokens: int
    usd: float | None
    image_tokens_per_request: int = 0
    text_tokens_per_request: int = 0
    assumptions: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        usd = "unknown (no price; pass prices=...)" if self.usd is None else f"${self.usd:,.4f}"
        return (f"{self.judge}: {self.requests:,} requests, {self.input_tokens:,} input + "
                f"{self.output_tokens:,} output tokens, {usd}")


def _price_for(provider: str, model: str, prices: Mapping[str, Any] | None,
               option: ModelPrice | None = None) -> ModelPrice | None:
    if option is not None and model not in (prices or {}):  # the judge's price option, unless prices= names it
        return option
    if provider == "openai-compatible":  # a local server: free unless the caller prices it
        return lookup_price(model, prices, builtin=False) or _FREE
    return lookup_price(model, prices)


def price_of(judge: str, prices: Mapping[str, Any] | None = None, *,
             option: ModelPrice | None = None) -> ModelPrice | None:
    """The price the judge spec ``judge`` is billed at (what :func:`usage_cost` and the spending
    cap use): the judge's ``price`` option (``option``) unless ``prices`` names the model, else
    ``prices`` or the table; local OpenAI-compatible servers are free unless one of them prices it."""
    parsed = JudgeSpec.parse(judge)
    return _price_for(parsed.api_provider, parsed.model, prices, option)


def estimate_cost(
    data_or_n: Any,
    judge: Any = "openai:gpt-4o-mini",
    *,
    prices: Mapping[str, Any] | None = None,
    image_size: int | None = None,
    image_shape: tuple[int, int] | None = None,
    detail: str | None = None,
    input_kind: str | None = None,
    template: Any = None,
    output_tokens: int = DEFAULT_OUTPUT_TOKENS,
    batch: bool = False,
) -> CostEstimate:
    """Dry-run estimate of judging ``data_or_n`` (a count, or anything with ``len()``) — no key, no request.

    ``judge`` is a spec string or a built VLM judge (whose options are then used). ``image_shape``
    ``(width, height)`` of the source images gives the aspect ratio (default square);
    ``batch=True`` (implied by an ``openai-batch:``/``gemini-batch:`` judge) applies the batch-API price.
    """
    if isinstance(data_or_n, (bool, str, bytes)) or not (isinstance(data_or_n, int) or hasattr(data_or_n, "__len__")):
        raise TypeError(f"data_or_n must be a number of samples or a sized dataset, got {type(data_or_n).__name__}")
    n = int(data_or_n) if isinstance(data_or_n, int) else len(data_or_n)
    if n < 0:
        raise ValueError(f"data_or_n must be >= 0, got {n}")
    if isinstance(getattr(judge, "options", None), VLMOptions):  # a built VLM judge
        spec, opts, provider, model = judge.id, judge.options, judge.provider, judge.model
        batch = batch or JudgeSpec.parse(judge.id).is_batch
    else:
        parsed = JudgeSpec.parse(judge)
        spec, provider, model = str(parsed), parsed.api_provider, parsed.model
        batch = batch or parsed.is_batch
        overrides = {k: v for k, v in dict(image_size=image_size, detail=detail, input_kind=input_kind,
                                           template=template).items() if v is not None}
        opts = VLMOptions(**overrides)
    notes: list[str] = []
    if provider == "offline":
        return CostEstimate(spec, 0, 0, 0, 0.0, assumptions=["offline judge: no API calls"])
    price = _price_for(provider, model, prices, opts.price)
    if price is None:
        notes.append(f"no price for model {model!r}: pass prices={{{model!r}: {{...}}}}; "
                     "image tokens estimated with the gpt-4o formula")
    elif price.note:
        notes.append(f"{model}: {price.note}")
    w, h = image_shape or (1, 1)
    if opts.input_kind == "both":
        w *= 2
    scale = opts.image_size / max(w, h)
    view_w, view_h = max(1, round(w * scale)), max(1, round(h * scale))
    resolved_detail = opts.resolved_detail(provider)
    img = image_tokens(price or ModelPrice(input_per_mtok=0, output_per_mtok=0), view_w, view_h, resolved_detail)
    tpl = get_template(opts.template)
    txt = text_tokens(tpl.system) + text_tokens(tpl.user) + 20
    notes.append(f"image {view_w}x{view_h} px, detail={resolved_detail}, {img} image tokens/request")
    notes.append(f"~{output_tokens} output tokens/request (set output_tokens=...)")
    if batch:
        notes.append("batch API: half price")
    per_in = img + txt
    return CostEstimate(spec, n, n * per_in, n * output_tokens, cost_usd(price, n * per_in, n * output_tokens, batch),
                        image_tokens_per_request=img, text_tokens_per_request=txt, assumptions=notes)


def actual_cost(judgments: Iterable[Judgment], model: str, *, prices: Mapping[str, Any] | None = None,
                batch: bool = False) -> CostEstimate:
    """Totals from recorded token usage (failed judgments included: their tokens were billed)."""
    items = list(judgments)
    tin = sum(j.input_tokens for j in items)
    tout = sum(j.output_tokens for j in items)
    price = lookup_price(model, prices)
    judge_id = items[0].judge_id if items else model
    notes = [] if price else [f"no price for model {model!r}"]
    return CostEstimate(judge_id, len(items), tin, tout, cost_usd(price, tin, tout, batch), assumptions=notes)


def usage_cost(judge: str, requests: int, input_tokens: int, output_tokens: int, *,
               prices: Mapping[str, Any] | None = None, batch: bool = False) -> CostEstimate:
    """Cost of recorded usage of the judge spec ``judge`` (priced as :func:`estimate_cost` prices it:
    local OpenAI-compatible servers are free unless ``prices`` names the model; offline judges are free)."""
    parsed = JudgeSpec.parse(judge)
    if parsed.api_provider == "offline":
        return CostEstimate(judge, 0, 0, 0, 0.0, assumptions=["offline judge: no API calls"])
    price = price_of(judge, prices)
    notes = [] if price else [f"no price for model {parsed.model!r}: pass prices={{{parsed.model!r}: {{...}}}}"]
    if parsed.is_batch:
        batch = True
        notes.append("batch API price")
    tin, tout = int(input_tokens), int(output_tokens)
    return CostEstimate(judge, int(requests), tin, tout, cost_usd(price, tin, tout, batch), assumptions=notes)
