"""What the development scripts beside this file share: samples in turn, a press subset, a resumable
run with a progress line per sample, and the report (JSON, markdown, plot) with the commit."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from rcstat.evaluation.kv.bench import Config, run_kv_bench
from rcstat.evaluation.kv.summary import summarise
from rcstat.evaluation.provenance import git_commit
from rcstat.evaluation.runlog import records
from rcstat.render.kv_report import write_report


def in_turn(samples: Sequence, per_task: int) -> list:
    """Task-major samples reordered one of each family in turn, so a stopped run is balanced."""
    return [s for i in range(per_task) for s in samples[i::per_task]]


def only(presses: dict, names: str) -> dict:
    """``presses`` restricted to the comma-separated ``names`` (all of them when empty), in order."""
    return {k: v for k, v in presses.items() if k in names.split(",")} if names else presses


def run(model, tokenizer, samples: Sequence, config: Config, out: Path) -> list[dict]:
    """Run (or resume, from ``out/log.jsonl``) the bench, a ``done/total`` line per sample."""
    return run_kv_bench(
        model,
        tokenizer,
        samples,
        config,
        log=out / "log.jsonl",
        progress=lambda done, total: print(f"{done}/{total}", file=sys.stderr, flush=True),
    )


def logged(out: Path, samples: Sequence) -> list[dict]:
    """The records ``out/log.jsonl`` holds for ``samples`` (a stopped run, summarised as it stands; the
    presses' reprs may have grown since)."""
    keys = {s.key for s in samples}
    return [r for r in records(out / "log.jsonl") if r["key"] in keys]


def live_kvzip(**options):
    """A factory of kvpress's ``KVzipPress(compression_ratio, **options)``, run live as ``live_rczip``'s."""
    from kvpress import KVzipPress

    def make(ratio: float) -> KVzipPress:
        return KVzipPress(compression_ratio=ratio, **options)

    make.live = True
    return make


def live_rczip(**options):
    """A factory of ``RCZipPress(compression_ratio, **options)`` the bench runs live (its own passes:
    one run per sample, every ratio read from its scores)."""
    from rcstat.presses.rczip_press import RCZipPress

    def make(ratio: float) -> RCZipPress:
        return RCZipPress(compression_ratio=ratio, **options)

    make.live = True
    return make


def report(out: Path, meta: dict, config: Config, records: list[dict]) -> None:
    """Write the run's report in ``out``, its metadata with the commit, and say where."""
    for path in write_report(out, {**meta, "commit": git_commit()}, summarise(config, records)):
        print(f"wrote {path}", file=sys.stderr)
