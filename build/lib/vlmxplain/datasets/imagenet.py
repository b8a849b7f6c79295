"""ImageNet-1k class names, offline (from timm's bundled metadata)."""
from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def imagenet_class_names() -> tuple[str, ...]:
    """The 1,000 ImageNet class descriptions in index order (e.g. index 281 -> 'tabby, tabby cat')."""
    from timm.data import ImageNetInfo

    info = ImageNetInfo()
    return tuple(info.index_to_description(i) for i in range(1000))


def imagenet_indices(*keywords: str) -> tuple[int, ...]:
    """Indices of the classes whose description contains any keyword as a whole comma-separated name.

    ``imagenet_indices("tabby cat", "tiger cat")`` -> ``(281, 282)``.
    """
    names = imagenet_class_names()
    wanted = {k.strip().lower() for k in keywords}
    found = tuple(i for i, desc in enumerate(names) if wanted & {p.strip().lower() for p in desc.split(",")})
    missing = [k for k in wanted if not any(k in {p.strip().lower() for p in names[i].split(",")} for i in found)]
    if missing:
        raise KeyError(f"no ImageNet class named {missing}")
    return found
