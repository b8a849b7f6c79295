"""What a VLM costs: :class:`ModelPrice` (USD per 1M tokens and the image-token model). The price
table and the token arithmetic are in :mod:`.cost`; judge options name a price too, so it lives
below both."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

ImageModel = Literal["tile", "patch", "gemini", "flat"]


class ModelPrice(BaseModel):
    """Price and image-token model of one VLM (USD per 1M tokens)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input_per_mtok: float
    output_per_mtok: float
    image: ImageModel = "tile"
    image_base: int = 85  # tile: tokens at low detail / base per image
    image_tile: int = 170  # tile: per 512-px tile (openai) or per 768-px tile (gemini: 258)
    patch_multiplier: float = 1.0
    flat_tokens: int = 0  # image == "flat": tokens per image (local servers vary)
    #: batch-API prices (USD / 1M tokens); None: :data:`BATCH_DISCOUNT` × the standard price
    batch_input_per_mtok: float | None = None
    batch_output_per_mtok: float | None = None
    note: str = ""

    def per_mtok(self, batch: bool = False) -> tuple[float, float]:
        """(input, output) USD per 1M tokens, at the batch-API rate when ``batch``."""
        if not batch:
            return self.input_per_mtok, self.output_per_mtok
        return (self.input_per_mtok * BATCH_DISCOUNT if self.batch_input_per_mtok is None else self.batch_input_per_mtok,
                self.output_per_mtok * BATCH_DISCOUNT if self.batch_output_per_mtok is None
                else self.batch_output_per_mtok)


#: The providers' batch APIs (OpenAI Batch, Gemini Batch Mode) charge half the standard price; a
#: price with ``batch_input_per_mtok``/``batch_output_per_mtok`` set overrides it per model.
BATCH_DISCOUNT = 0.5
