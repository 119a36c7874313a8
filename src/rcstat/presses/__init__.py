"""KV-cache presses (docs/method.md §3): RC as a kvpress scorer, thresholds for any scorer, a registry.

``RCStatPress`` is a ``ScorerPress``; kvpress's wrappers give its modes (``AdaKVPress`` for budgets
ranked across heads, ``DecodingPress`` while generating, ``ChunkKVPress``…), ``ThresholdPress``
the paper's threshold mode, ``rc_press`` the recommended composition, and ``registry.PRESSES``
every press by the name the CLI and the benchmarks use. Names load on first use.
"""

from rcstat.lazy import exports

__all__ = [
    "FULL_CACHE",
    "PRESSES",
    "AutoRCPress",
    "AutoRCScorer",
    "FillPress",
    "RCStatPress",
    "RCZipPress",
    "ThresholdPress",
    "make_press",
    "parse_presses",
    "rc_press",
]
__getattr__, __dir__ = exports(
    __name__,
    {
        "FULL_CACHE": "rcstat.presses.registry",
        "PRESSES": "rcstat.presses.registry",
        "make_press": "rcstat.presses.registry",
        "parse_presses": "rcstat.presses.registry",
        "RCStatPress": "rcstat.presses.rcstat_press",
        "CrossLayerPress": "rcstat.presses.cross_layer_press",
        "AutoRCPress": "rcstat.presses.auto_press",
        "AutoRCScorer": "rcstat.presses.auto_press",
        "FillPress": "rcstat.presses.fill_press",
        "RCZipPress": "rcstat.presses.rczip_press",
        "ThresholdPress": "rcstat.presses.threshold_press",
        "rc_press": "rcstat.presses.factory",
    },
)
