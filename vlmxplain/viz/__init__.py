"""Every figure: the quadrant matrix, score histograms, galleries, the shortcut-bias curve and
galleries, the sweep heat map and mask grid, the CAM-method comparison, the agreement scatter, judge
reliability; and the escaped HTML pieces
panels and reports share. Figures are matplotlib/seaborn and returned, never shown implicitly;
:func:`save_figure` writes one."""
from .agreement import plot_agreement, plot_sanity_check
from .cam_methods import plot_cam_metrics, plot_cam_transitions, plot_quadrant_shares
from .bias import plot_bias_curve, plot_flagged_gallery, plot_split_examples
from .figures import QUADRANT_COLORS, plot_quadrant_gallery, plot_quadrant_matrix, plot_score_histogram, save_figure
from .reliability import plot_reliability
from .sweep import plot_mask_grid, plot_sweep_heatmap

__all__ = [
    "QUADRANT_COLORS", "plot_agreement", "plot_cam_metrics", "plot_cam_transitions", "plot_quadrant_shares",
    "plot_bias_curve", "plot_flagged_gallery", "plot_mask_grid", "plot_quadrant_gallery", "plot_quadrant_matrix",
    "plot_reliability", "plot_sanity_check", "plot_score_histogram", "plot_split_examples",
    "plot_sweep_heatmap", "save_figure",
]
