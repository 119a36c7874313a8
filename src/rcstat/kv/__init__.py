"""KV-cache compression with relative contextualization (SPEC §3), as kvpress presses."""

from rcstat.kv.rcstat_press import RCStatPress
from rcstat.kv.replay import PrefillRecord, record_prefill, replay

__all__ = ["PrefillRecord", "RCStatPress", "record_prefill", "replay"]
