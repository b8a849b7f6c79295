"""Shared pieces of the panels: image → widget bytes, data URIs, and the static-rendering mixin.

Every panel is an ipywidgets box whose display bundle also carries a ``text/html`` rendering of
its current state (:class:`StaticRepr`): live front ends show the widget, while an executed
notebook (papermill, nbconvert, a saved file without widget state) shows the HTML.
"""
from __future__ import annotations

from typing import Any

import ipywidgets as widgets
from PIL import Image

from ..masks.images import data_uri, encode_image as _encode
from ..viz.html import esc

IMAGE_FORMAT = "jpeg"  # fast to encode (a 512-px frame in a few ms); fine for viewing


def encode_image(image: Image.Image, fmt: str = IMAGE_FORMAT) -> bytes:
    """Encode a PIL image for a ``widgets.Image`` (JPEG unless ``fmt="png"``)."""
    return _encode(image, fmt)


def img_tag(image: Image.Image | None, alt: str, max_width: int | None = None, caption: str | None = None) -> str:
    """An ``<img>`` (in a ``<figure>`` when captioned) with an escaped alt text."""
    if image is None:
        return ""
    style = f" style='max-width:{int(max_width)}px;height:auto'" if max_width else ""
    tag = f"<img src='{data_uri(image)}' alt='{esc(alt)}'{style}>"
    if caption is None:
        return tag
    return (f"<figure style='display:inline-block;margin:0 .5em .5em 0;vertical-align:top'>{tag}"
            f"<figcaption style='font-size:85%;color:#555'>{esc(caption)}</figcaption></figure>")


def blank_image(size: tuple[int, int] = (8, 8)) -> bytes:
    """A small light-grey placeholder for an image slot with nothing to show."""
    return encode_image(Image.new("RGB", size, (235, 235, 235)))


def image_widget(css: str, width: str | None = None) -> widgets.Image:
    """A ``widgets.Image`` with a ``vx-`` CSS class and a placeholder: natural size (or ``width``),
    never wider than its container, never stretched."""
    layout = widgets.Layout(width=width, max_width="100%", height="auto", object_fit="contain",
                            align_self="flex-start")
    w = widgets.Image(value=blank_image(), format=IMAGE_FORMAT, layout=layout)
    w.add_class(css)
    return w


def html_widget(css: str, value: str = "", **kw: Any) -> widgets.HTML:
    w = widgets.HTML(value=value, **kw)
    w.add_class(css)
    return w


def button(description: str, css: str, tooltip: str = "", **kw: Any) -> widgets.Button:
    w = widgets.Button(description=description, tooltip=tooltip or description, **kw)
    w.add_class(css)
    return w


def show(widget: widgets.Widget, visible: bool) -> None:
    """Show or hide a widget (``layout.display``)."""
    widget.layout.display = None if visible else "none"


class StaticRepr:
    """Mixin for panels: ``to_html()`` is the static rendering, added to the display bundle."""

    panel_title = "vlmxplain panel"

    def to_html(self) -> str:  # pragma: no cover - every panel overrides it
        raise NotImplementedError

    def _repr_mimebundle_(self, **kwargs: Any) -> dict:
        data = super()._repr_mimebundle_(**kwargs) or {}  # type: ignore[misc]
        try:
            body = self.to_html()
        except Exception as err:  # a static fallback must never break displaying the live panel
            body = f"<pre>{esc(type(err).__name__)}: {esc(err)}</pre>"
        data["text/html"] = f"<div class='vx-static'><h4 style='margin:.2em 0'>{esc(self.panel_title)}</h4>{body}</div>"
        return data
