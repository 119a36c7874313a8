"""Run the support benchmark on one slice:
``python benchmarks/attribution/support/run.py DATASET DATA SKIP LIMIT OUT``.

Writes OUT (JSON: the command, commit, model and one record per example); the other topic of
example ``i`` is example ``i + LIMIT // 2`` of the same slice (mod LIMIT).
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import torch

from rcstat.evaluation.attribution.data import load_examples
from rcstat.evaluation.attribution.support import run_support_bench
from rcstat.evaluation.provenance import git_commit
from rcstat.models.loading import load_model, model_name


def main(dataset: str, data: str, skip: int, limit: int, out: str) -> None:
    torch.set_num_threads(1)
    examples = load_examples(dataset, data, limit, skip).examples
    others = examples[len(examples) // 2 :] + examples[: len(examples) // 2]
    model, tokenizer = load_model(None)
    records = run_support_bench(
        model, tokenizer, examples, others, progress=lambda i, n: print(f"{i}/{n}", flush=True)
    )
    result = {
        "command": "python " + shlex.join(sys.argv),
        "commit": git_commit(),
        "model": model_name(model),
        "dataset": dataset,
        "skip": skip,
        "examples": len(examples),
        "records": records,
    }
    Path(out).write_text(json.dumps(result) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
