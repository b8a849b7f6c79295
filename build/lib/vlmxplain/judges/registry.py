"""The judge registry (a leaf: it imports no backend).

Backends register a factory per provider with :func:`register_judge` (they do so when
:mod:`vlmxplain.judges` is imported); :func:`make_judge` builds a judge from a spec and
:func:`check_judge` validates one without building it (no key, no network, no model).
"""
from __future__ import annotations

from typing import Annotated, Any, Callable

from pydantic import BeforeValidator, PlainSerializer

from ..core.specs import JudgeSpec
from .base import Judge

JudgeFactory = Callable[..., Judge]
JudgeCheck = Callable[[JudgeSpec], None]
_FACTORIES: dict[str, JudgeFactory] = {}
_CHECKS: dict[str, JudgeCheck] = {}


def register_judge(provider: str, check: JudgeCheck | None = None) -> Callable[[JudgeFactory], JudgeFactory]:
    """Register ``factory(spec: JudgeSpec, classifier=None, **options) -> Judge`` for a provider;
    ``check(spec)`` (optional) raises ``ValueError`` for a spec the factory would refuse."""

    def decorate(factory: JudgeFactory) -> JudgeFactory:
        _FACTORIES[provider] = factory
        if check is not None:
            _CHECKS[provider] = check
        return factory

    return decorate


def registered_providers() -> list[str]:
    return sorted(_FACTORIES)


def check_judge(spec: "str | JudgeSpec") -> JudgeSpec:
    """Parse and validate a judge spec without building the judge (raises ``ValueError``)."""
    parsed = JudgeSpec.parse(spec)
    if parsed.provider not in _FACTORIES:
        raise ValueError(f"judge: no backend for provider {parsed.provider!r} is available "
                         f"(registered: {', '.join(registered_providers())})")
    if parsed.provider in _CHECKS:
        _CHECKS[parsed.provider](parsed)
    return parsed


def make_judge(spec: "str | JudgeSpec | Judge", classifier: Any = None, **options: Any) -> Judge:
    """Build a judge from a spec (a ready :class:`Judge` passes through)."""
    if isinstance(spec, Judge):
        return spec
    parsed = check_judge(spec)
    return _FACTORIES[parsed.provider](parsed, classifier=classifier, **options)


#: A pydantic field type for a judge parameter (parsed and checked against the registry).
JudgeField = Annotated[JudgeSpec, BeforeValidator(check_judge), PlainSerializer(str, return_type=str)]
