"""Reports over runs: one self-contained HTML file per run (:func:`report`) and the comparison of
two runs (:func:`compare`). Figures come from :mod:`vlmxplain.viz`; every judge text is escaped."""
from .compare import Comparison, compare
from .html_report import report, report_html

__all__ = ["Comparison", "compare", "report", "report_html"]
