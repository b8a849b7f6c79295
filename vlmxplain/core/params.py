"""Parameter models: the base of every notebook's and the CLI's parameters (pydantic).

A model subclasses :class:`ParamsModel`; :meth:`ParamsModel.check` validates keyword values and
raises ``ValueError("<name>: <what is wrong>")`` for the first bad one, naming the allowed values
and, for an unknown name, the closest known one. Each layer contributes field types for what it
owns (``DataField`` in :mod:`vlmxplain.datasets`, ``CamField`` in :mod:`vlmxplain.cams`, ...);
the notebooks' ``parameters`` cells are written from these models' defaults.
"""
from __future__ import annotations

import difflib
import re
from typing import Annotated, Any, Mapping

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError


def closest(name: str, known: list[str] | tuple[str, ...]) -> str:
    """' (did you mean "x"?)' for the closest known name, or ''."""
    match = difflib.get_close_matches(str(name), list(known), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


_BOUNDS = {"greater_than_equal": (">=", "ge"), "less_than_equal": ("<=", "le"), "greater_than": (">", "gt"),
           "less_than": ("<", "lt")}


def _constraint_message(name: str, err: dict) -> str | None:
    """One line for pydantic's bound, integer and choice errors, naming the closest valid value."""
    kind, ctx, value = err.get("type", ""), err.get("ctx") or {}, err.get("input")
    if kind in _BOUNDS:
        op, key = _BOUNDS[kind]
        bound = ctx.get(key)
        hint = f" (closest valid: {bound})" if key in ("ge", "le") else ""
        return f"{name}: must be {op} {bound}, got {value!r}{hint}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"{name}: must be an integer, got {value!r}"
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        return f"{name}: must be one of {', '.join(choices)}, got {value!r}{closest(str(value), choices)}"
    return None


def _message(err: dict, known: tuple[str, ...]) -> str:
    name = str(err["loc"][0]) if err.get("loc") else "parameters"
    if err.get("type") == "extra_forbidden":
        return f"{name}: unknown parameter{closest(name, known)}; known: {', '.join(known)}"
    constraint = _constraint_message(name, err)
    if constraint is not None:
        return constraint
    msg = str(err.get("msg", ""))
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    if not err.get("loc") and msg.partition(":")[0] in known:  # a check across fields names its parameter
        return msg
    if not msg.startswith(f"{name}:") and not msg.startswith(f"{name} "):
        msg = f"{name}: {msg}"
    if "input" in err and err.get("type") not in ("value_error",) and "got" not in msg:
        msg += f", got {err['input']!r}"
    return msg


class ParamsModel(BaseModel):
    """Base of parameter models: unknown names are refused, values are validated and frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    @classmethod
    def check(cls, **values: Any):
        """Validate ``values``; raise ``ValueError`` naming the first bad parameter."""
        try:
            return cls(**values)
        except ValidationError as exc:
            raise ValueError(_message(exc.errors()[0], tuple(cls.model_fields))) from None

    @classmethod
    def from_namespace(cls, namespace: Mapping[str, Any]):
        """Validate the model's fields as found in ``namespace`` (a notebook's ``globals()``)."""
        return cls.check(**{name: namespace[name] for name in cls.model_fields if name in namespace})

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Every field's default as a plain value (what a notebook's ``parameters`` cell holds)."""
        return cls.model_construct().model_dump(mode="json")

    def as_dict(self) -> dict[str, Any]:
        """The validated values as plain JSON-safe values (specs as their strings)."""
        return self.model_dump(mode="json")


def _nonempty_path(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str) or not value.strip():
        raise ValueError(f"must be a non-empty directory path, got {value!r}")
    return value.strip()


#: A directory parameter (``run_dir``, ``figures_dir``): a non-empty path string.
DirPath = Annotated[str, BeforeValidator(_nonempty_path)]
