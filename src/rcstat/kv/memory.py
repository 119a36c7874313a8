"""What a cache really holds and what a step really costs in memory (issues 3 and 6).

:func:`cache_bytes` counts the bytes of the storages a cache keeps alive, whatever the cache:
a plain ``DynamicCache``, kvpress's masked one (masked entries are still held, and a trimmed
view still holds its whole storage) or :class:`rcstat.kv.ragged.RaggedCache` (its buffers,
room to grow included). :func:`peak_extra_bytes` measures the peak resident memory a call adds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import torch

T = TypeVar("T")


def _tensors(value: Any) -> Iterable[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _tensors(item)


def cache_bytes(cache: Any) -> int:
    """Bytes of every distinct storage the cache's layers keep alive (keys, values, bookkeeping)."""
    seen: dict[tuple[str, int], int] = {}
    for layer in cache.layers:
        for value in vars(layer).values():
            for tensor in _tensors(value):
                storage = tensor.untyped_storage()
                if storage.nbytes():
                    seen[(str(tensor.device), storage.data_ptr())] = storage.nbytes()
    return sum(seen.values())


def peak_extra_bytes(fn: Callable[[], T]) -> tuple[T, int | None]:
    """Run ``fn`` and return its result with the peak resident memory it added (Linux), else ``None``.

    Resets the kernel's high-water mark (``/proc/self/clear_refs``) first, so each call is measured
    on its own; the figure includes what ``fn`` returns (a compressed cache, say).
    """
    try:
        Path("/proc/self/clear_refs").write_text("5")
        before = _status_kib("VmRSS")
    except OSError:
        return fn(), None
    result = fn()
    return result, max(0, _status_kib("VmHWM") - before) * 1024


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise OSError(f"{field} not in /proc/self/status")
