"""Attribution (docs/method.md §4): which sources of a context a response, or a span of it, came from.

Names load on first use (``from rcstat.attribution import Attributor`` imports the model stack).
"""

from rcstat.lazy import exports

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
__getattr__, __dir__ = exports(
    __name__,
    {
        "Attribution": "rcstat.attribution.attributor",
        "Attributor": "rcstat.attribution.attributor",
        "SpanAttribution": "rcstat.attribution.attributor",
        "HeadProfile": "rcstat.attribution.profile",
        "select_heads": "rcstat.attribution.profile",
        "Scoring": "rcstat.attribution.scoring",
        "GRANULARITIES": "rcstat.attribution.sources",
        "Source": "rcstat.attribution.sources",
    },
)
