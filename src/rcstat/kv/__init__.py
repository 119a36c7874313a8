"""KV-cache compression with relative contextualization (SPEC §3), as kvpress presses."""

from rcstat.kv.rcstat_press import RCStatPress

__all__ = ["RCStatPress"]
