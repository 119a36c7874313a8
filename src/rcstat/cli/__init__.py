"""The ``rcstat`` command line: one thin module per command (parse flags, one library call, one render).

Results go to stdout, progress and messages to stderr. Bad input ends with a one-line
``rcstat: error: …`` and exit code 2; ``--debug`` shows the traceback instead; Ctrl-C at any moment
ends with ``rcstat: interrupted`` and exit code 130. Building the parser imports nothing heavy, so
``rcstat --help`` answers at once; each command imports the library when it runs.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence

from rcstat.cli.common import Parser

EXAMPLES = """examples:
  rcstat model prepare            # convert the embedded SmolLM2-135M-Instruct once, print its directory
  rcstat demo                     # RC statistics of a real answer on the default model
  rcstat demo --report rcstat-demo  # and HTML reports of an attribution and a compression
  rcstat attribute --context examples/curie.txt --query "When did Marie Curie win her Nobel Prizes?"
  rcstat attribute --sources chunks.jsonl --query "Who won?" --span-text "Curie" --format json
  rcstat compress --context report.txt --query "What changed?" --compression-ratio 0.75 --press rcstat
  rcstat compress --context - --query "What changed?" --format html --output compression.html < report.txt
  rcstat generate --context report.txt --query "Summarise the report." --budget 128 --format html
  rcstat heads calibrate --dataset verigran --data dev.jsonl --output heads.json
  rcstat data fetch               # once: the haystack of the built-in KV tasks
  rcstat bench kv --task needle,multikey --per-task 20 --press rcstat,snapkv --output runs/kv
  rcstat bench attribution --dataset verigran --data dev.jsonl --method rcstat,attention,random
"""


def build_parser() -> Parser:
    from rcstat.cli import attribute, bench, cite, compress, data, demo, generate, heads, model

    parser = Parser(
        prog="rcstat",
        description="Relative Contextualization statistics from transformer attention logits.",
        epilog=EXAMPLES,
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("--version", action="version", version=f"rcstat {installed_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in (model, demo, attribute, cite, compress, generate, heads, bench, data):
        module.register(sub)
    return parser


def installed_version() -> str:
    """This package's version, from its installed metadata."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("rcstat")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "(not installed)"


def main(argv: Sequence[str] | None = None) -> int:
    args = None
    try:
        from rcstat.cli.common import describe, flags, show_warning
        from rcstat.errors import RCStatError, RCStatWarning

        parser = build_parser()
        args = parser.parse_args(argv)
        args.argv = list(sys.argv[1:] if argv is None else argv)
        with warnings.catch_warnings():
            warnings.simplefilter("always", RCStatWarning)
            warnings.showwarning = show_warning
            try:
                return args.func(args)
            except RCStatError as err:
                if args.debug:
                    raise
                print(f"rcstat: error: {describe(err, flags(parser))}", file=sys.stderr)
                return 2
    except KeyboardInterrupt:
        if args is not None and args.debug:
            raise
        print("rcstat: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
