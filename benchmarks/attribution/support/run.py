"""Run the support benchmark on one slice, resumably:
``python benchmarks/attribution/support/run.py DATASET DATA SKIP LIMIT LOG [EARLIER]``.

Appends one JSON line per finished example to LOG (a JSONL file: a header line with the dataset,
data, slice, model and margin, then one record per example with the commit that ran it); a rerun
with the same arguments skips the examples already there. The other topic of example ``i`` is
example ``i + LIMIT // 2`` of the same slice (mod LIMIT). EARLIER: a log of the same slice from a run
before the null drops (the whole context cut); its records are kept and extended by one pass of query
and response per response (``rcstat.evaluation.attribution.support.extend_record``).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

from rcstat.errors import RCStatError
from rcstat.evaluation.attribution.data import load_examples
from rcstat.evaluation.attribution.support import pair, run_support_bench
from rcstat.evaluation.provenance import git_commit
from rcstat.evaluation.runlog import records
from rcstat.models.loading import load_model, model_name
from rcstat.options import DEFAULT_CITE_MARGIN

# the code whose changes mark a run "-dirty" (others edit the KV presses meanwhile)
PATHS = (
    "src/rcstat/attribution",
    "src/rcstat/evaluation",
    "src/rcstat/models",
    "benchmarks/attribution/support",
)


def main(dataset: str, data: str, skip: int, limit: int, log: str, earlier: str | None = None) -> None:
    torch.set_num_threads(1)
    examples = load_examples(dataset, data, limit, skip).examples
    try:
        others = pair(examples)
    except RCStatError as err:
        sys.exit(f"{err} (0-based in the slice); change LIMIT")
    if (
        earlier
        and json.loads(Path(earlier).read_text(encoding="utf-8").partition("\n")[0])["margin"]
        != DEFAULT_CITE_MARGIN
    ):
        sys.exit(f"{earlier} was run at another margin")
    model, tokenizer = load_model(None)
    header = {"dataset": dataset, "data": data, "skip": skip, "limit": limit, "model": model_name(model)}
    start = time.monotonic()

    def progress(done: int, total: int) -> None:
        print(f"{log}: {done}/{total} ({time.monotonic() - start:.0f} s)", flush=True)

    run_support_bench(
        model,
        tokenizer,
        examples,
        others,
        progress=progress,
        log=Path(log),
        header=header,
        commit=git_commit(PATHS) or "",
        earlier=records(Path(earlier)) if earlier else (),
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), *sys.argv[5:7])
