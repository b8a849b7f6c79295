"""Which samples a call works on, and in what order: shards and the judging order.

Both come from a stable hash of the sample id (SHA-256: the same in every process and on every
machine), salted differently, so a shard is a random subset of the dataset and the order within
it a random permutation independent of the shard choice.

The judging order matters once a run stops early. With ``order="shuffled"`` (the default of
``explain`` and ``rejudge``) the samples are worked through in a fixed pseudo-random permutation,
so whatever a run has finished when it stops — at its spending cap, a kill, a provider's fatal
reply — is a simple random sample of the dataset, and its quadrant shares (with the intervals of
:meth:`~vlmxplain.core.quadrants.QuadrantSummary.intervals`) estimate the whole dataset's. In the
dataset's order, a folder sorted by class stopped half-way has judged half of the classes only.
A resumed call continues the same permutation. The same order picks the samples of
``sanity_check(limit=n)`` and the order in which ``evaluate`` computes metrics.
"""
from __future__ import annotations

import hashlib
from typing import Any, Iterable, Literal, TypeVar

__all__ = ["ORDERS", "Order", "check_order", "check_shard", "in_order", "order_key", "orders_used", "shard_of"]

Order = Literal["shuffled", "dataset"]
#: ``explain(order=...)``: a fixed pseudo-random permutation of the samples, or the dataset's own order
ORDERS: tuple[str, ...] = ("shuffled", "dataset")
_ORDER_SALT = b"vlmxplain judging order\0"
T = TypeVar("T")


def _stable_hash(sample_id: str, salt: bytes = b"") -> int:
    return int.from_bytes(hashlib.sha256(salt + str(sample_id).encode("utf-8")).digest()[:8], "little")


def shard_of(sample_id: str, n: int) -> int:
    """The shard (0..n-1) a sample belongs to: a stable hash of its id (the same on every machine)."""
    return _stable_hash(sample_id) % n


def order_key(sample_id: str) -> int:
    """The sample's place in the shuffled judging order (a stable hash of its id)."""
    return _stable_hash(sample_id, _ORDER_SALT)


def in_order(items: Iterable[T], order: Order, sample_id=lambda item: item) -> list[T]:
    """``items`` in the judging ``order`` (``"dataset"``: as given); ``sample_id(item)`` names each."""
    items = list(items)
    return sorted(items, key=lambda item: order_key(sample_id(item))) if order == "shuffled" else items


def orders_used(recorded: Iterable[str] | None, order: Order) -> list[str]:
    """The judging orders a run has used once a call with ``order`` is added to ``recorded``
    (the run's record: whether what a stopped run judged is a random sample)."""
    return sorted(set(recorded or ()) | {order})


def check_order(order: Any) -> Order:
    if order not in ORDERS:
        raise ValueError(f"order: one of {', '.join(map(repr, ORDERS))}, got {order!r}")
    return order


def check_shard(shard: Any) -> tuple[int, int] | None:
    if shard is None:
        return None
    try:
        k, n = shard
        ok = all(isinstance(v, int) and not isinstance(v, bool) for v in (k, n)) and 0 <= k < n
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"shard: expected (k, n) with integers 0 <= k < n, got {shard!r}")
    return int(k), int(n)
