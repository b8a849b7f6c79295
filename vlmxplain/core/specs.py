"""Typed specs: the one parser of every spec string the user types.

``DataSpec.parse("shapes:n=300,seed=1")``, ``ClassifierSpec.parse("shortcut:0.75")`` and
``JudgeSpec.parse("openai-compatible:qwen2.5-vl@http://localhost:11434/v1")`` turn a string
into a typed object; ``str(spec)`` gives the canonical string back, and
``parse(str(spec)) == spec``. Validation, resolution, pricing and the run record all use these
objects: no other module looks inside a spec string.

The grammar:

* data: ``gallery`` | ``shapes`` | ``shapes:key=value,...`` | a folder of class sub-folders |
  a ``.csv`` list. Only the exact words ``gallery`` and ``shapes`` (or ``shapes:``) name the
  built-in sets; anything else is a path (a folder named ``shapes_photos`` is a folder; write
  ``./shapes`` for a folder called ``shapes``).
* classifier: ``auto`` | ``efficientnet_lite0`` | ``shortcut:<rate>[:<class>]`` |
  ``<timm model name>`` (or ``timm:<name>``) | ``torchvision:<name>`` | ``hf:<folder or model type>``,
  each optionally followed by ``,checkpoint=...,num_classes=...,classes=[...]`` | a ``.pt``/``.pth``
  ShapesNet checkpoint path.
* judge: ``<provider>:<model>`` with ``openai-compatible:<model>@<base_url>``; ``openai-batch:<model>`` and
  ``gemini-batch:<model>`` judge through the providers' batch APIs.
"""
from __future__ import annotations

import difflib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

DataKind = Literal["gallery", "shapes", "folder", "csv"]
ClassifierKind = Literal["auto", "efficientnet_lite0", "shortcut", "timm", "torchvision", "hf", "checkpoint"]
#: Options a model-name classifier spec takes after a comma: ``resnet18,num_classes=3,checkpoint=m.pth``.
MODEL_OPTIONS = ("checkpoint", "num_classes", "classes")
#: Prefixes naming a model library (a bare name is a timm name).
MODEL_LIBRARIES = ("timm", "torchvision", "hf")

#: Names accepted for the shipped, ImageNet-pretrained EfficientNet-Lite0.
OFFLINE_MODEL_NAMES = ("efficientnet_lite0", "efficientnet-lite0", "tf_efficientnet_lite0")
CHECKPOINT_SUFFIXES = (".pt", ".pth")
SHORTCUT_CLASSES = ("circle", "square", "triangle")
#: Judge providers (each has a backend registered in :mod:`vlmxplain.judges`).
JUDGE_PROVIDERS = ("offline", "openai", "gemini", "openai-compatible", "openai-batch", "gemini-batch")
#: Providers judged through a provider batch API, and the API whose requests and replies they share.
BATCH_PROVIDERS = {"openai-batch": "openai", "gemini-batch": "gemini"}
#: Providers whose spec carries a server URL after ``@``.
URL_PROVIDERS = ("openai-compatible",)


def _split_options(text: str) -> list[str]:
    """Split ``k=v,k=[1, 2],k="a,b"`` at the commas outside brackets and quotes."""
    parts, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def _option_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _option_text(value: Any) -> str:
    """A value as written in a spec: bare when it reads back as the same string, else JSON."""
    if isinstance(value, str) and "," not in value and _option_value(value) == value:
        return value
    return json.dumps(value)


@dataclass(frozen=True)
class DataSpec:
    """Where samples come from: the photo gallery, the shapes set (with options), a folder, a CSV."""

    kind: DataKind
    path: str | None = None
    options: tuple[tuple[str, Any], ...] = field(default=())

    @classmethod
    def parse(cls, text: "str | DataSpec | Path") -> "DataSpec":
        if isinstance(text, DataSpec):
            return text
        if isinstance(text, Path):
            text = str(text)
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"data: give 'gallery', 'shapes', a folder or a CSV file, got {text!r}")
        text = text.strip()
        if text == "gallery":
            return cls("gallery")
        if text == "shapes" or text.startswith("shapes:"):
            options: dict[str, Any] = {}
            for part in _split_options(text.partition(":")[2]):
                if "=" not in part:
                    raise ValueError(f"data: {text!r}: option {part!r} is not key=value")
                key, value = (s.strip() for s in part.split("=", 1))
                if not key.isidentifier():
                    raise ValueError(f"data: {text!r}: {key!r} is not an option name")
                options[key] = _option_value(value)
            return cls("shapes", options=tuple(sorted(options.items())))
        return cls("csv" if Path(text).suffix.lower() == ".csv" else "folder", path=text)

    @property
    def shapes_options(self) -> dict[str, Any]:
        return dict(self.options)

    @property
    def label(self) -> str:
        """A short name for figures and tags: the folder's or file's name, else the spec."""
        return Path(self.path).name if self.path is not None else str(self)

    def check_exists(self) -> "DataSpec":
        """For a folder or CSV: the path exists and is of the right kind (clear error otherwise)."""
        if self.path is None:
            return self
        path = Path(self.path).expanduser()
        if not path.exists():
            near = difflib.get_close_matches(self.path.split(":", 1)[0], ["gallery", "shapes"], n=1, cutoff=0.6)
            hint = f" (did you mean {near[0]!r}?)" if near else " (or use 'gallery' / 'shapes')"
            raise ValueError(f"data: no such file or folder: {self.path!r}{hint}")
        if self.kind == "folder" and path.is_file():
            raise ValueError(f"data: {self.path!r} is a file but not a .csv list")
        if self.kind == "csv" and not path.is_file():
            raise ValueError(f"data: {self.path!r} is not a file")
        return self

    def __str__(self) -> str:
        if self.kind == "gallery":
            return "gallery"
        if self.kind == "shapes":
            opts = ",".join(f"{k}={_option_text(v)}" for k, v in self.options)
            return f"shapes:{opts}" if opts else "shapes"
        return str(self.path)


@dataclass(frozen=True)
class ClassifierSpec:
    """Which classifier: ``auto`` (by data), the shipped EfficientNet-Lite0, a shortcut ShapesNet
    of the bias experiment, a timm / torchvision architecture, a Hugging Face ``transformers``
    image classifier (``hf:<saved folder>`` or ``hf:<model type>``), or a ShapesNet checkpoint.

    A library model takes options after a comma: ``checkpoint=<state dict file>``,
    ``num_classes=<n>`` and ``classes=["a","b",...]`` (or ``classes=<names.txt>``, one per line),
    e.g. ``torchvision:resnet18,num_classes=3,checkpoint=model.pth``.
    """

    kind: ClassifierKind
    name: str | None = None  # timm / torchvision architecture, hf folder or model type
    path: str | None = None  # ShapesNet checkpoint
    rate: float | None = None  # shortcut
    shortcut_class: str = "circle"
    options: tuple[tuple[str, Any], ...] = field(default=())

    AUTO: ClassVar[str] = "auto"

    @property
    def model_options(self) -> dict[str, Any]:
        """The options as :func:`~vlmxplain.models.load_classifier` keywords (``classes`` →
        ``class_names``)."""
        opts = dict(self.options)
        if "classes" in opts:
            opts["class_names"] = opts.pop("classes")
        return opts

    @staticmethod
    def _parse_options(text: str, options_text: str) -> tuple[tuple[str, Any], ...]:
        options: dict[str, Any] = {}
        for part in _split_options(options_text):
            key, eq, value = (s.strip() for s in part.partition("="))
            if not eq:
                raise ValueError(f"classifier: {text!r}: option {part!r} is not key=value")
            if key not in MODEL_OPTIONS:
                near = difflib.get_close_matches(key, MODEL_OPTIONS, n=1, cutoff=0.6)
                hint = f" (did you mean {near[0]!r}?)" if near else ""
                raise ValueError(f"classifier: unknown option {key!r}{hint}; known: {', '.join(MODEL_OPTIONS)}")
            value = _option_value(value)
            if key == "num_classes" and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"classifier: num_classes must be an integer >= 1, got {value!r}")
            if key == "classes":
                ok = isinstance(value, str) or (isinstance(value, list) and value
                                                and all(isinstance(v, str) and v.strip() for v in value))
                if not ok:
                    raise ValueError('classifier: classes must be a JSON list of names (classes=["cat","dog"]) '
                                     f"or a .txt file with one name per line, got {value!r}")
            options[key] = value
        n, names = options.get("num_classes"), options.get("classes")
        if isinstance(n, int) and isinstance(names, list) and len(names) != n:
            raise ValueError(f"classifier: num_classes={n} but {len(names)} classes are named")
        return tuple(sorted(options.items()))

    @classmethod
    def parse(cls, text: "str | ClassifierSpec") -> "ClassifierSpec":
        if isinstance(text, ClassifierSpec):
            return text
        if not isinstance(text, str) or not text.strip():
            raise ValueError("classifier: give 'auto', 'efficientnet_lite0', 'shortcut:<rate>', a timm name or a "
                             f"checkpoint path, got {text!r}")
        text = text.strip()
        if text == "auto":
            return cls("auto")
        if text.lower() in OFFLINE_MODEL_NAMES:
            return cls("efficientnet_lite0")
        if text.startswith("shortcut:"):
            parts = text.split(":")
            try:
                rate = float(parts[1])
            except (IndexError, ValueError):
                rate = math.nan
            if len(parts) > 3 or not 0.0 <= rate <= 1.0:
                raise ValueError(f"classifier: {text!r}: expected 'shortcut:<rate in [0, 1]>[:<class>]', "
                                 "e.g. 'shortcut:0.75'")
            cls_name = parts[2] if len(parts) == 3 else "circle"
            if cls_name not in SHORTCUT_CLASSES:
                raise ValueError(f"classifier: {text!r}: the shortcut class must be one of {SHORTCUT_CLASSES}, "
                                 f"got {cls_name!r}")
            return cls("shortcut", rate=rate, shortcut_class=cls_name)
        base, _, options_text = text.partition(",")
        if Path(base).suffix.lower() in CHECKPOINT_SUFFIXES and not options_text:
            return cls("checkpoint", path=text)
        library, colon, name = base.partition(":")
        if not colon:
            library, name = "timm", base
        if library not in MODEL_LIBRARIES:
            near = difflib.get_close_matches(library, MODEL_LIBRARIES, n=1, cutoff=0.6)
            hint = f" (did you mean '{near[0]}:{name}'?)" if near else ""
            raise ValueError(f"classifier: unknown model library {library!r}{hint}; known: {', '.join(MODEL_LIBRARIES)}")
        name = name.strip()
        bad = " :" if library == "hf" else " /\\:"
        if not name or any(c in name for c in bad):
            raise ValueError(f"classifier: {text!r} is neither a model name nor a .pt/.pth checkpoint")
        return cls(library, name=name, options=cls._parse_options(text, options_text))  # type: ignore[arg-type]

    def __str__(self) -> str:
        if self.kind == "shortcut":
            suffix = "" if self.shortcut_class == "circle" else f":{self.shortcut_class}"
            return f"shortcut:{self.rate:g}{suffix}"
        if self.kind in MODEL_LIBRARIES:
            base = str(self.name) if self.kind == "timm" else f"{self.kind}:{self.name}"
            return ",".join([base, *(f"{k}={_option_text(v)}" for k, v in self.options)])
        if self.kind == "checkpoint":
            return str(self.path)
        return self.kind


def check_url(url: str, what: str = "base URL") -> str:
    """An http(s) URL with no credentials anywhere (user-info, query or fragment): a spec or
    option is recorded in the run store, so it must never hold a secret."""
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ValueError(f"judge: the {what} must start with http:// or https://")
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise ValueError(f"judge: the {what} must not contain credentials (user:password@); set the key in the "
                         "environment (e.g. OPENAI_COMPATIBLE_API_KEY) or pass api_key= in judge_options")
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise ValueError(f"judge: the {what} must not have a query or fragment (keys belong in the environment, "
                         "never in a URL)")
    if not parts.hostname:
        raise ValueError(f"judge: the {what} names no host")
    return url


@dataclass(frozen=True)
class JudgeSpec:
    """A judge: provider, model and (for OpenAI-compatible servers) the server URL."""

    provider: str
    model: str
    base_url: str | None = None

    @classmethod
    def parse(cls, text: "str | JudgeSpec") -> "JudgeSpec":
        if isinstance(text, JudgeSpec):
            return text
        known = ", ".join(f"{p}:..." for p in JUDGE_PROVIDERS)
        if not isinstance(text, str) or ":" not in text:
            raise ValueError(f"judge: {text!r} is not a judge spec; expected 'provider:model', one of {known}")
        provider, rest = text.strip().split(":", 1)
        provider = provider.strip().lower()
        if provider not in JUDGE_PROVIDERS:
            near = difflib.get_close_matches(provider, JUDGE_PROVIDERS, n=1, cutoff=0.6)
            hint = f" (did you mean '{near[0]}:{rest.strip()}'?)" if near else ""
            raise ValueError(f"judge: unknown provider {provider!r}{hint}; known: {', '.join(JUDGE_PROVIDERS)}")
        base_url = None
        if provider in URL_PROVIDERS:
            rest, at, base_url = rest.partition("@")
            if not at:
                raise ValueError(f"judge: {provider}:{rest} needs a server URL: '{provider}:<model>@<base_url>'")
            check_url(base_url.strip(), "server URL")
            base_url = base_url.strip()
        model = rest.strip()
        if not model:
            raise ValueError(f"judge: {provider}: names no model")
        return cls(provider, model, base_url)

    @property
    def is_offline(self) -> bool:
        return self.provider == "offline"

    @property
    def is_batch(self) -> bool:
        """Judged through a provider batch API (``openai-batch:``, ``gemini-batch:``): half price, asynchronous."""
        return self.provider in BATCH_PROVIDERS

    @property
    def api_provider(self) -> str:
        """The API whose requests and replies this judge uses (``openai`` for ``openai-batch``)."""
        return BATCH_PROVIDERS.get(self.provider, self.provider)

    def __str__(self) -> str:
        return f"{self.provider}:{self.model}" + (f"@{self.base_url}" if self.base_url else "")
