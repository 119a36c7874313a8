"""Compressed KV caches at run time: replaying presses on a recorded prefill, batched decoding over
many caches, the ragged per-head cache that frees what a press evicts, and what a cache holds."""

from rcstat.lazy import exports

__all__ = ["PrefillRecord", "RaggedCache", "RaggedPress", "record_prefill", "replay"]
__getattr__, __dir__ = exports(
    __name__,
    {
        "PrefillRecord": "rcstat.kv.replay",
        "record_prefill": "rcstat.kv.replay",
        "replay": "rcstat.kv.replay",
        "RaggedCache": "rcstat.kv.ragged",
        "RaggedPress": "rcstat.kv.ragged",
    },
)
