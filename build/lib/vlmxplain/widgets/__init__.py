"""Jupyter panels over a classifier or a run: thin ipywidgets views, state in traitlets.

- :class:`MaskTuner` — live alpha/beta/CAM-method/class tuning on one image or a dataset;
- :class:`JudgeViewer` — one sample at a time: what the judge saw and what it said (escaped);
- :class:`QuadrantBrowser` — the clickable 2×2 matrix, live threshold, class filter, gallery;
- :class:`Annotator` — blind human scoring for the agreement study, saved as it is given.

Every panel's display bundle also carries a static HTML rendering (``panel.to_html()``), so an
executed or saved notebook still shows the result without a live kernel.
"""
from .annotator import Annotator
from .judge_viewer import JudgeViewer
from .mask_tuner import MaskTuner
from .quadrant_browser import QuadrantBrowser

__all__ = ["Annotator", "JudgeViewer", "MaskTuner", "QuadrantBrowser"]
