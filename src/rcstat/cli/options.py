"""Option types with their domains, checked at parse time and shared by every command, and the
flags of attribution's :class:`~rcstat.attribution.Scoring`. Imports nothing heavy."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

MODEL_HELP = "model id or local path (default: the embedded SmolLM2-135M-Instruct)"


def number(
    kind: type = float,
    low: float | None = None,
    high: float | None = None,
    high_open: bool = False,
    low_open: bool = False,
):
    """An argparse type: a finite ``kind`` in ``[low, high]`` (``high`` excluded if ``high_open``,
    ``low`` if ``low_open``)."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {_domain(kind, low, high, high_open, low_open)}, got {text!r}"
            ) from None
        too_low = low is not None and (value <= low if low_open else value < low)
        too_high = high is not None and (value >= high if high_open else value > high)
        if not math.isfinite(value) or too_low or too_high:
            raise argparse.ArgumentTypeError(
                f"expected {_domain(kind, low, high, high_open, low_open)}, got {text!r}"
            )
        return value

    return parse


def _domain(
    kind: type, low: float | None, high: float | None, high_open: bool, low_open: bool = False
) -> str:
    what = "an integer" if kind is int else "a number"
    if low == 1 and high is None and kind is int:
        return "a positive integer"
    if low is None and high is None:
        return f"{what} (finite)"
    left = "(" if low_open or low is None else "["  # an infinite end is never in the domain
    right = ")" if high_open or high is None else "]"
    ends = ("-∞" if low is None else f"{low:g}", "∞" if high is None else f"{high:g}")
    return f"{what} in {left}{ends[0]}, {ends[1]}{right}"


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


def non_blank(text: str) -> str:
    """An argparse type: text with something in it (an empty ``--query`` fails before any model loads)."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"expected some text, got {text!r}")
    return text


FORMATS = ("table", "json", "html")


def output_format(text: str) -> str:
    """A ``--format`` value; ``text`` (what ``cite`` and ``generate`` called ``table``) is an alias."""
    return "table" if text == "text" else text


def add_format(parser: argparse.ArgumentParser, html: str | None = None) -> None:
    """``--format``: ``table`` (text to read), ``json``, and ``html`` where ``html`` says what it shows."""
    parser.add_argument(
        "--format",
        type=output_format,
        choices=FORMATS if html else FORMATS[:2],
        default="table",
        help="table: text to read (alias: text); json" + (f"; html: {html}" if html else ""),
    )


def names(text: str) -> tuple[str, ...]:
    """A comma-separated list of names (blank entries dropped); checked against a registry later."""
    return tuple(v.strip() for v in text.split(",") if v.strip())


def thresholds(text: str) -> tuple[str, tuple[float, ...]]:
    """``NAME=τ,τ,…``: a press and the thresholds it runs at (finite numbers)."""
    name, sep, values = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=τ,τ,… (e.g. rcstat=0.5,1,2), got {text!r}")
    return name.strip(), numbers(float)(values)


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


def add_model(parser: argparse.ArgumentParser) -> None:
    """``--model``, ``--device`` and ``--dtype``: read back by :func:`model_source`."""
    from rcstat.options import DEFAULT_DEVICE, DEFAULT_DTYPE, DType, choices

    parser.add_argument("--model", help=MODEL_HELP)
    parser.add_argument(
        "--device", default=DEFAULT_DEVICE, help="auto (a GPU when torch sees one), cpu, cuda, cuda:N or mps"
    )
    parser.add_argument(
        "--dtype", choices=choices(DType), default=DEFAULT_DTYPE, help="auto: bfloat16 on a GPU, else float32"
    )


def model_source(args: argparse.Namespace):
    """The :class:`~rcstat.models.loading.ModelSource` of ``--model``, ``--device`` and ``--dtype``."""
    from rcstat.models.loading import ModelSource

    return ModelSource(args.model, args.device, args.dtype)


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


def add_slice(parser: argparse.ArgumentParser, skip: int = 0, strict: bool = True) -> None:
    """``--skip`` / ``--limit`` (a slice of a dataset's examples) and, with ``strict``, ``--strict``."""
    parser.add_argument("--skip", type=NON_NEGATIVE, default=skip, help="leave out the first N examples")
    parser.add_argument("--limit", type=POSITIVE, help="use the first N examples (after --skip) only")
    if strict:
        parser.add_argument(
            "--strict", action="store_true", help="fail on the first record that cannot be used"
        )


def add_workers(parser: argparse.ArgumentParser) -> None:
    """Flags that run a job on Ray workers (the optional extra ``rcstat[ray]``)."""
    from rcstat.distributed import Workers

    parser.add_argument(
        "--workers",
        type=NON_NEGATIVE,
        default=Workers.count,
        help="run on N Ray actors on this machine (each loads the model)",
    )
    parser.add_argument(
        "--ray-address", help="run on an existing Ray cluster (one actor per GPU where it has GPUs)"
    )
    parser.add_argument(
        "--threads", type=POSITIVE, help=f"torch threads per worker (default: {Workers.threads})"
    )


def workers(args: argparse.Namespace):
    """The :class:`~rcstat.distributed.Workers` of ``--workers``, ``--ray-address`` and ``--threads``."""
    from rcstat.distributed import Workers
    from rcstat.errors import RCStatError

    if args.threads is not None and not (args.workers or args.ray_address):
        raise RCStatError("threads are set per Ray worker: give --workers or --ray-address", option="threads")
    return Workers(args.workers, args.ray_address, args.threads or Workers.threads)
