"""Judges: the :class:`Judge` contract, the registry, the offline judges and the VLM backends.

Importing this package registers every built-in backend with the registry (the registry itself
imports none of them). VLM SDKs are imported only when a VLM judge is built.
"""
from . import offline, vlm  # noqa: F401  (registers the built-in backends)
from .base import Judge, NeedsClassifier, content_key
from .registry import check_judge, make_judge, register_judge, registered_providers

__all__ = ["Judge", "NeedsClassifier", "check_judge", "content_key", "make_judge", "register_judge", "registered_providers"]
