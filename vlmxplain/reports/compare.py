"""``vx.compare(run_a, run_b)``: defined in :mod:`vlmxplain.metrics.compare` (experiments build on
it); kept here so ``vlmxplain.reports.compare`` still names it."""
from ..metrics.compare import Comparison, compare, describe

__all__ = ["Comparison", "compare", "describe"]
