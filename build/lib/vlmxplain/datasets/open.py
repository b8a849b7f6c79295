"""Build the dataset a :class:`~vlmxplain.core.specs.DataSpec` names."""
from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer

from ..core.specs import DataSpec
from .core import Dataset
from .gallery import gallery
from .shapes import shapes
from .sources import folder, from_csv


def open_dataset(spec: "DataSpec | str", limit: int | None = None) -> Dataset:
    """The dataset of ``spec`` (``gallery``, ``shapes[:k=v,...]``, a class folder, a CSV list),
    optionally cut to its first ``limit`` samples. Bad shapes options raise ``ValueError``
    naming ``data``; nothing is decoded here (datasets are lazy)."""
    spec = DataSpec.parse(spec)
    if spec.kind == "gallery":
        ds: Dataset = gallery()
    elif spec.kind == "shapes":
        try:
            ds = shapes(**spec.shapes_options)
        except TypeError as err:
            raise ValueError(f"data: {spec}: {err}") from None
        except ValueError as err:
            raise ValueError(f"data: {spec}: {err}") from None
    elif spec.check_exists().kind == "folder":
        ds = folder(spec.path)
    else:
        ds = from_csv(spec.path)
    ds.spec = str(spec)  # recorded in the run record (rejudge can rebuild an ``auto`` classifier)
    return ds.limit(limit) if limit else ds


def checked_data_spec(value: "DataSpec | str") -> DataSpec:
    """A data spec that can be opened: the path exists, the shapes options are valid."""
    spec = DataSpec.parse(value).check_exists()
    if spec.kind == "shapes":
        open_dataset(spec)
    return spec


#: A pydantic field type for a data parameter (parsed, checked, serialised as its string).
DataField = Annotated[DataSpec, BeforeValidator(checked_data_spec), PlainSerializer(str, return_type=str)]
