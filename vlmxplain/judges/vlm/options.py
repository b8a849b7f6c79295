"""Options of a VLM judge (validated by pydantic; a key is never an option)."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ...core.specs import check_url
from ...masks.judge_input import InputKind
from .prices import ModelPrice
from .prompts import PromptTemplate, get_template

Detail = Literal["auto", "low", "medium", "high"]


class VLMOptions(BaseModel):
    """Options of a VLM judge (all optional). Keys are not options: pass ``api_key=`` separately."""

    # strict: True is not a number, "8" not an integer; no infinite timeouts or rates
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, strict=True, allow_inf_nan=False)

    input_kind: InputKind = "masked"
    image_size: int = Field(512, ge=32, le=4096, description="longest side of the image sent, px")
    image_format: Literal["png", "jpeg"] = Field(
        "png", description="encoding of the image sent: png (lossless), or jpeg (quality 90: ~20× faster to "
        "encode and ~7× smaller; another format is another question, so cached answers are not shared)")
    detail: Detail | None = Field(None, description="OpenAI image detail / Gemini media resolution; "
                                  "None = provider default")
    temperature: float | None = Field(0.0, ge=0.0, le=2.0, description="None = do not send (reasoning models)")
    max_output_tokens: int | None = Field(None, ge=16)
    template: PromptTemplate | None = Field(None, validate_default=True)
    concurrency: int = Field(8, ge=1, le=100, description="max requests in flight")
    rpm: float | None = Field(None, gt=0, description="requests per minute")
    tpm: float | None = Field(None, gt=0, description="tokens per minute (input estimate + output)")
    timeout: float = Field(120.0, gt=0, description="seconds per request")
    max_retries: int = Field(4, ge=0, le=20, description="retries after the first attempt")
    backoff_base: float = Field(1.0, ge=0.0)
    backoff_max: float = Field(60.0, ge=0.0)
    base_url: str | None = None
    api_version: str | None = None
    api_key_env: str | None = Field(None, description="environment variable holding the key (openai-compatible)")
    structured: bool = Field(True, description="openai-compatible: send a json_schema response_format")
    preflight: bool = Field(True, description="check once that the endpoint accepts connections before sending")
    price: ModelPrice | None = Field(None, description="what the model costs (USD per 1M tokens; a dict or a "
                                     "ModelPrice): for a model not in PRICES or a hosted OpenAI-compatible "
                                     "provider; cost estimates, run.cost() and max_cost use it")
    hedge: bool = Field(False, description="once nothing is left to send, send a straggler (on the wire past the "
                        "75th latency percentile) a second time on a free slot; the first answer wins, both are billed")

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        return None if value is None else check_url(value)

    @field_validator("template", mode="before")
    @classmethod
    def _template(cls, value: Any) -> PromptTemplate:
        return get_template(value)

    @model_validator(mode="after")
    def _hedge_needs_greedy(self) -> "VLMOptions":
        if self.hedge and self.temperature != 0:
            raise ValueError("hedge=True needs temperature=0: when answers are sampled, keeping the faster of two "
                             "favours the shorter one")
        return self

    def resolved_detail(self, provider: str) -> str | None:
        """The detail actually used: explicit, else ``low`` for OpenAI-style APIs, provider default for Gemini."""
        if self.detail is not None:
            return None if (self.detail == "auto" and provider == "gemini") else self.detail
        return "low" if provider in ("openai", "openai-compatible") else None
