"""Attribution (SPEC §4): which sources of a context a response, or a span of it, came from."""

from rcstat.attribution.attributor import (
    Attribution,
    Attributor,
    HeadProfile,
    Scoring,
    SpanAttribution,
    select_heads,
)
from rcstat.attribution.sources import GRANULARITIES, Source

__all__ = [
    "GRANULARITIES",
    "Attribution",
    "Attributor",
    "HeadProfile",
    "Scoring",
    "Source",
    "SpanAttribution",
    "select_heads",
]
