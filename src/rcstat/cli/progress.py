"""Progress on stderr (a bar on a terminal, plain lines in a log) and loading the model with a word."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rcstat.cli.common import say


def progress(total: int, unit: str, every: float = 1.0) -> Callable[[int, int], None]:
    """A progress bar on stderr when it is a terminal; otherwise a plain line per update, ``k/n unit
    (elapsed, rate, ETA)``, at most one every ``every`` seconds and always the last (so that a run in
    the background or in a log says how far it is and how long it has left)."""
    if not sys.stderr.isatty():
        started = last = time.perf_counter()

        def line(done: int, _total: int) -> None:
            nonlocal last
            now = time.perf_counter()
            if done == total or now - last >= every:
                last = now
                spent = now - started
                rate = done / spent if spent > 0 else 0.0
                eta = f", ETA {duration((total - done) / rate)}" if rate and done < total else ""
                say(f"{done}/{total} {unit} ({duration(spent)}, {rate:.2f} {unit}/s{eta})")

        return line
    from tqdm import tqdm

    bar = tqdm(total=total, desc=unit, file=sys.stderr)

    def update(done: int, _total: int) -> None:
        bar.update(done - bar.n)
        if done == total:
            bar.close()

    return update


def duration(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``2 h 10 min``."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


@contextmanager
def phases(total: int) -> Iterator[Callable[[str], None]]:
    """Named phases of one long command: ``phase(name)`` starts the next one.

    On a terminal, a bar on stderr counts them and shows the current one; otherwise each phase
    is one plain line on stderr, ``[k/n] name…`` (no bar, no carriage returns).
    """
    if not sys.stderr.isatty():
        count = iter(range(1, total + 1))
        yield lambda name: say(f"[{next(count, total)}/{total}] {name}…")
        return
    from tqdm import tqdm

    bar = tqdm(total=total, file=sys.stderr, bar_format="{desc}: {bar:20} {n_fmt}/{total_fmt} [{elapsed}]")
    started = False

    def phase(name: str) -> None:
        nonlocal started
        if started:
            bar.update(1)
        started = True
        bar.set_description_str(name)

    try:
        yield phase
        bar.update(total - bar.n)
    finally:
        bar.close()


def load(source, phase: Callable[[str], None] = lambda name: say(f"{name}…")) -> tuple[str, Any, Any]:
    """``(name, model, tokenizer)`` of a :class:`~rcstat.models.loading.ModelSource` (the embedded
    default when it names none), saying so."""
    from rcstat.models.embedded import DEFAULT_MODEL, embedded, is_prepared
    from rcstat.models.loading import model_name

    shipped = embedded(source.name or DEFAULT_MODEL)
    if shipped and not is_prepared(name=shipped.name):
        say(f"first run: converting the embedded {shipped.name} once (30–120 s)…")
    phase(f"loading {source.name or DEFAULT_MODEL}")
    loaded, tokenizer = source.load()
    return model_name(loaded), loaded, tokenizer
