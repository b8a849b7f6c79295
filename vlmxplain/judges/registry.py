"""Judge specs are strings: ``offline:faithfulness``, ``offline:groundtruth``,
``openai:<model>``, ``gemini:<model>``, ``openai-compatible:<model>@<base_url>``.

Backends register a factory per provider prefix with :func:`register_judge`; :func:`make_judge`
builds a judge from a spec. :func:`parse_judge_spec` validates a spec without building it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from .base import Judge

JudgeFactory = Callable[..., Judge]
_FACTORIES: dict[str, JudgeFactory] = {}


@dataclass(frozen=True)
class JudgeSpec:
    provider: str
    model: str
    base_url: str | None = None

    def __str__(self) -> str:
        return f"{self.provider}:{self.model}" + (f"@{self.base_url}" if self.base_url else "")


def register_judge(provider: str) -> Callable[[JudgeFactory], JudgeFactory]:
    """Register ``factory(spec: JudgeSpec, classifier=None, **options) -> Judge`` for a provider."""

    def decorate(factory: JudgeFactory) -> JudgeFactory:
        _FACTORIES[provider] = factory
        return factory

    return decorate


def available_providers() -> list[str]:
    _load_builtin_backends()
    return sorted(_FACTORIES)


def parse_judge_spec(spec: str) -> JudgeSpec:
    """Parse and validate a judge spec string (raises ``ValueError`` naming the problem)."""
    _load_builtin_backends()
    if not isinstance(spec, str) or ":" not in spec:
        raise ValueError(
            f"judge: {spec!r} is not a judge spec; expected 'provider:model', one of "
            f"{', '.join(p + ':...' for p in available_providers())}"
        )
    provider, rest = spec.split(":", 1)
    provider = provider.strip().lower()
    if provider not in _FACTORIES:
        raise ValueError(f"judge: unknown provider {provider!r} in {spec!r}; known: {', '.join(available_providers())}")
    base_url = None
    if provider == "openai-compatible":
        rest, at, base_url = rest.partition("@")
        if not at:
            raise ValueError(f"judge: {spec!r} needs a server URL: 'openai-compatible:<model>@<base_url>'")
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"judge: the base URL in {provider}:{rest}@... must start with http:// or https://")
        if "@" in base_url.split("://", 1)[1].split("/", 1)[0]:
            # The spec is the judge id, written to run stores: credentials must not be part of it.
            raise ValueError(
                "judge: the server URL must not contain credentials (user:password@); "
                "set OPENAI_COMPATIBLE_API_KEY or pass api_key= in judge_options"
            )
    model = rest.strip()
    if not model:
        raise ValueError(f"judge: {spec!r} names no model")
    return JudgeSpec(provider, model, base_url)


def make_judge(spec: "str | Judge", classifier: Any = None, **options: Any) -> Judge:
    """Build a judge from a spec string (a ready :class:`Judge` passes through)."""
    if isinstance(spec, Judge):
        return spec
    parsed = parse_judge_spec(spec)
    return _FACTORIES[parsed.provider](parsed, classifier=classifier, **options)


def _load_builtin_backends() -> None:
    # Importing the modules registers their factories; VLM backends import their SDKs lazily.
    from . import offline  # noqa: F401
    try:
        from . import vlm  # noqa: F401
    except ModuleNotFoundError as err:  # an SDK (openai / google-genai) is not installed
        if err.name and err.name.split(".")[0] not in ("openai", "google"):
            raise
