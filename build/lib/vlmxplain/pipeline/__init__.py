"""The pipeline: explain() (Dataset → classifier → CAMs → masks → judge → RunStore) and
rejudge() (judge a stored run again)."""
from .explain import ExplainSummary, align_targets, explain
from .rejudge import rejudge, reload_classifier

__all__ = ["ExplainSummary", "align_targets", "explain", "rejudge", "reload_classifier"]
