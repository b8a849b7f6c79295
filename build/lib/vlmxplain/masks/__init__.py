"""From a raw CAM to what people and judges look at: saliency, the sigmoid mask, the masked CAM
image, the overlay, and the judge's input — all derived on demand, never by recomputing a CAM."""
from .images import data_uri, encode_image, fit_longest, png_bytes, preview_of, side_by_side, thumbnail
from .judge_input import INPUT_KINDS, InputKind, JudgeInput, judge_view, judge_view_png, make_judge_input
from .regions import energy_in_box, energy_on_mask
from .saliency import (
    apply_mask, image_mask, kept_share, masked_image, normalize, overlay, saliency, sigmoid_mask,
    validate_mask_params,
)

__all__ = [
    "INPUT_KINDS", "InputKind", "JudgeInput", "apply_mask", "data_uri", "encode_image", "energy_in_box", "energy_on_mask", "fit_longest", "image_mask",
    "judge_view", "judge_view_png", "kept_share", "make_judge_input", "masked_image", "normalize", "overlay",
    "png_bytes", "preview_of", "saliency", "side_by_side", "sigmoid_mask", "thumbnail", "validate_mask_params",
]
