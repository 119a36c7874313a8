"""What every command shares: the parser class, option types with their domains, progress, loading
the model, and writing output. Imports nothing heavy: the library loads inside commands."""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rcstat.errors import RCStatError

MODEL_HELP = "model id or local path (default: the embedded SmolLM2-135M-Instruct)"
# what to tell a user when the library names an option that is not a flag of the command
HINTS = {"haystack": "fetch it once with `rcstat data fetch`"}


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Parser(argparse.ArgumentParser):
    """Usage errors in one line (``rcstat attribute: error: … (see … --help)``), exit code 2."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def examples(*lines: str) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def command(sub, name: str, summary: str, description: str, *example_lines: str) -> Parser:
    """A command's parser with its one-line help, description and examples."""
    return sub.add_parser(name, help=summary, description=description, epilog=examples(*example_lines))


def group(sub, name: str, summary: str, metavar: str, *example_lines: str):
    """A command whose own sub-commands are required (``rcstat model …``, ``rcstat bench …``)."""
    parser = sub.add_parser(name, help=summary, description=summary, epilog=examples(*example_lines))
    inner = parser.add_subparsers(dest=f"{name}_command", metavar=metavar)
    inner.required = True
    return inner


# ---- option types: every numeric option has its domain, checked at parse time -----------------


def number(kind: type = float, low: float | None = None, high: float | None = None, high_open: bool = False):
    """An argparse type: a finite ``kind`` in ``[low, high]`` (``high`` excluded if ``high_open``)."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {_domain(kind, low, high, high_open)}, got {text!r}"
            ) from None
        too_low = low is not None and value < low
        too_high = high is not None and (value >= high if high_open else value > high)
        if not math.isfinite(value) or too_low or too_high:
            raise argparse.ArgumentTypeError(f"expected {_domain(kind, low, high, high_open)}, got {text!r}")
        return value

    return parse


def _domain(kind: type, low: float | None, high: float | None, high_open: bool) -> str:
    what = "an integer" if kind is int else "a number"
    if low == 1 and high is None and kind is int:
        return "a positive integer"
    if low is None and high is None:
        return f"{what} (finite)"
    right = ")" if high_open else "]"
    return f"{what} in [{'-∞' if low is None else f'{low:g}'}, {'∞' if high is None else f'{high:g}'}{right}"


def numbers(kind: type = float, low: float | None = None, high: float | None = None, high_open: bool = False):
    """An argparse type: a non-empty comma-separated list, each item as :func:`number` checks it."""
    one = number(kind, low, high, high_open)

    def parse(text: str) -> tuple:
        items = [v.strip() for v in text.split(",")]
        if not items or any(not v for v in items):
            raise argparse.ArgumentTypeError(f"expected a comma-separated list, got {text!r}")
        return tuple(one(v) for v in items)

    return parse


POSITIVE = number(int, low=1)
NON_NEGATIVE = number(int, low=0)
RATIO = number(float, low=0, high=1, high_open=True)
RATIOS = numbers(float, low=0, high=1, high_open=True)


def names(text: str) -> tuple[str, ...]:
    """A comma-separated list of names (blank entries dropped); checked against a registry later."""
    return tuple(v.strip() for v in text.split(",") if v.strip())


def int_pair(form: str) -> Callable[[str], tuple[int, int]]:
    def parse(text: str) -> tuple[int, int]:
        try:
            first, second = (int(p) for p in text.split(":"))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {form}, got {text!r}") from None
        if first < 0 or second < 0:
            raise argparse.ArgumentTypeError(f"expected {form} of non-negative integers, got {text!r}")
        return first, second

    return parse


# ---- output ------------------------------------------------------------------------------------


def check_output(output: str | None) -> None:
    """Refuse an output path that cannot be a file before any long work starts."""
    if output is not None and Path(output).is_dir():
        raise RCStatError(f"{output}: is a directory; --output takes a file name")


def emit(text: str, output: str | None) -> None:
    """Print, or write the file whole (never half-written)."""
    if output is None:
        print(text)
        return
    from rcstat.io import write_atomic

    write_atomic(Path(output), (text + "\n").encode())
    say(f"wrote {output}")


# ---- progress and loading ----------------------------------------------------------------------


def progress(total: int, unit: str, every: float = 30.0) -> Callable[[int, int], None]:
    """A progress bar on stderr when it is a terminal; otherwise a plain ``done/total`` line at
    most every ``every`` seconds and at the end (so that a long run in a log shows it is alive)."""
    if not sys.stderr.isatty():
        started = last = time.perf_counter()

        def line(done: int, _total: int) -> None:
            nonlocal last
            now = time.perf_counter()
            if done == total or now - last >= every:
                last = now
                say(f"{done}/{total} {unit} ({now - started:.0f} s)")

        return line
    from tqdm import tqdm

    bar = tqdm(total=total, desc=unit, file=sys.stderr)

    def update(done: int, _total: int) -> None:
        bar.update(done - bar.n)
        if done == total:
            bar.close()

    return update


@contextmanager
def phases(total: int) -> Iterator[Callable[[str], None]]:
    """Named phases of one long command: ``phase(name)`` starts the next one.

    On a terminal, a bar on stderr counts them and shows the current one; otherwise each phase
    is one plain line on stderr (no bar, no carriage returns).
    """
    if not sys.stderr.isatty():
        yield lambda name: say(f"{name}…")
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


def load(
    model: str | None, phase: Callable[[str], None] = lambda name: say(f"{name}…")
) -> tuple[str, Any, Any]:
    """``(name, model, tokenizer)`` of ``--model`` (the embedded default when absent), saying so."""
    from rcstat.models.embedded import DEFAULT_MODEL, is_prepared
    from rcstat.models.loading import load_model

    name = model or DEFAULT_MODEL
    if model is None and not is_prepared():
        say("first run: converting the embedded default model once (about 30 s)…")
    phase(f"loading {name}")
    loaded, tokenizer = load_model(model)
    return name, loaded, tokenizer


def add_model(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help=MODEL_HELP)


# ---- errors ------------------------------------------------------------------------------------


def flags(parser: argparse.ArgumentParser) -> set[str]:
    """Every option string of ``parser`` and its sub-commands."""
    found = set()
    for action in parser._actions:
        found.update(action.option_strings)
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= flags(sub)
    return found


def describe(err: RCStatError, known: set[str]) -> str:
    """The library's message, with the flag (or the hint) for the option it names."""
    message = str(err)
    option = getattr(err, "option", None)
    if option is None:
        return message
    flag = "--" + option.replace("_", "-")
    if flag in known and flag not in message:
        return f"{message} ({flag})"
    return f"{message}; {HINTS[option]}" if option in HINTS else message


# ---- attribution's scoring options -------------------------------------------------------------


def add_scoring(parser: argparse.ArgumentParser, only: tuple[str, ...] | None = None) -> None:
    """Flags for the fields of :class:`rcstat.attribution.Scoring`, defaulting to its defaults
    (``only``: just these fields)."""
    from rcstat.attribution.scoring import Scoring
    from rcstat.options import Estimator, Normalisation, Pool, YRows, choices

    default = Scoring()
    spec = {
        "estimator": dict(
            choices=choices(Estimator), help="E[Z] estimator (ranks the heads, scores the sources)"
        ),
        "top_k": dict(type=POSITIVE, help="heads used"),
        "y": dict(
            choices=choices(YRows),
            help="Y: the span's causal response logits (span), every response row's (response), "
            "or each query row's own (row)",
        ),
        "pool": dict(
            choices=choices(Pool),
            help="a source's score per head: E[RC] of its whole sample, mean/sum/max of its tokens' E[RC], "
            "or per span query the E[RC] of its best token, averaged over queries (query-max)",
        ),
        "normalise": dict(
            choices=choices(Normalisation), help="per head across sources, before averaging over heads"
        ),
    }
    for field, options in spec.items():
        if only is None or field in only:
            parser.add_argument("--" + field.replace("_", "-"), default=getattr(default, field), **options)


def scoring(args: argparse.Namespace):
    """The :class:`Scoring` the flags of :func:`add_scoring` describe."""
    from rcstat.attribution.scoring import Scoring

    fields = ("estimator", "top_k", "y", "pool", "normalise")
    return Scoring(**{f: getattr(args, f) for f in fields if hasattr(args, f)})
