"""rcstat: Relative Contextualization statistics from attention logits (RCStat, arXiv 2506.19549).

The method is documented in the repository's ``docs/method.md``. Layers, each importing only those
below it:

* core — ``rcstat.stats`` (the estimators), ``rcstat.models`` (loading, the logit engine),
  ``rcstat.presses`` (RC as a kvpress scorer, thresholds, the press registry), ``rcstat.kv`` (replay,
  batched decoding, the ragged cache), ``rcstat.attribution`` (the attributor), ``rcstat.demo``;
* ``rcstat.evaluation`` — the KV and attribution benchmarks, their tasks, data and baselines;
* ``rcstat.render`` — HTML pages, tables and plots;
* ``rcstat.cli`` — the command line, one thin module per command.

``from rcstat import RCStatPress, rc_press, Attributor, cite`` loads them on first use; ``cite`` (in
``rcstat.citing``, above the core and render layers) is the one-call citation API.
"""

from rcstat.lazy import exports

__version__ = "0.1.0"
__all__ = [
    "Attributor",
    "RCStatError",
    "RCStatPress",
    "Scoring",
    "ThresholdPress",
    "cite",
    "load_model",
    "rc_press",
]
__getattr__, __dir__ = exports(
    __name__,
    {
        "Attributor": "rcstat.attribution.attributor",
        "Scoring": "rcstat.attribution.scoring",
        "cite": "rcstat.citing",
        "RCStatError": "rcstat.errors",
        "RCStatPress": "rcstat.presses.rcstat_press",
        "ThresholdPress": "rcstat.presses.threshold_press",
        "rc_press": "rcstat.presses.factory",
        "load_model": "rcstat.models.loading",
    },
)
