"""Corpus attribution on Ray: rows per second for one process, one and two Ray workers, Ray's start-up
cost, and the peak memory of each actor.

The corpus is QuoteSum rows as a RAG system would log them (``sources``: the passages, ``query``,
``response``: the summary without its annotations), attributed by the embedded default model with
the default scoring, through the same job ``rcstat attribute --data … --workers N`` runs
(:func:`rcstat.distributed.map_items` over :class:`rcstat.attribution.corpus.AttributorFactory`).
Every mode uses one torch thread per process (``--threads 1``), so that two workers use the two
cores one process leaves idle; the outputs of all modes are checked equal row for row.

Per mode: wall time, time to the first row (start-up: Ray's cluster and actors, the model loading in
each), rows per second after the first row (steady state) and overall, and peak RSS (``ru_maxrss``)
of the process that ran the rows (each actor's own, for Ray). Ray's start-up alone is also timed
(``ray.init`` and ``ray.shutdown`` of a two-CPU cluster, no work). Times are ratios inside one run.

Run:  .venv/bin/python benchmarks/scale/run.py --data ../shared/data/quotesum_dev.jsonl
      (about 10 minutes on 2 cores; needs the `ray` extra, in `dev`)
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import resource
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

from rcstat.attribution.corpus import AttributorFactory, read_corpus
from rcstat.attribution.scoring import Scoring
from rcstat.distributed import Workers, map_items
from rcstat.evaluation.attribution.data import load_examples
from rcstat.evaluation.intervals import normal
from rcstat.evaluation.provenance import git_commit
from rcstat.io import write_atomic
from rcstat.models.loading import ModelSource

HERE = Path(__file__).resolve().parent
MODES = {"one process": Workers(), "1 Ray worker": Workers(1), "2 Ray workers": Workers(2)}


class Measured:
    """A worker factory whose rows also report the worker's pid and peak RSS so far."""

    def __init__(self, inner: AttributorFactory) -> None:
        self.inner = inner

    def __call__(self):
        run = self.inner()

        def item(it):
            row = run(it)
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
            return row, os.getpid(), peak

        return item


def corpus_file(data: str, rows: int, folder: Path) -> Path:
    """QuoteSum examples as corpus rows: the passages, the question, the plain summary."""
    examples = load_examples("quotesum", data, limit=rows).examples
    path = folder / "corpus.jsonl"
    lines = [
        json.dumps({"id": i, "sources": list(e.chunks), "query": e.query, "response": e.response})
        for i, e in enumerate(examples)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run_mode(items: list, workers: Workers) -> dict:
    import torch

    torch.set_num_threads(1)
    factory = Measured(AttributorFactory(ModelSource(), Scoring()))
    start = time.perf_counter()
    stamps, rows, peaks = [], [], {}
    for row, pid, peak in map_items(factory, items, workers):
        stamps.append(time.perf_counter() - start)
        rows.append(row)
        peaks[pid] = max(peaks.get(pid, 0.0), peak)
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    steady = (len(stamps) - 1) / (stamps[-1] - stamps[0])
    return {
        "workers": workers.describe(),
        "rows": len(rows),
        "wall_seconds": stamps[-1],
        "first_row_seconds": stamps[0],
        "rows_per_second": len(rows) / stamps[-1],
        "steady_rows_per_second": steady,
        "seconds_between_rows": statistics.fmean(gaps),
        "seconds_between_rows_ci95": list(normal(gaps)),
        "peak_rss_mib_per_process": sorted(round(p, 1) for p in peaks.values()),
        "output": [json.dumps(r, sort_keys=True) for r in rows],
    }


def ray_startup(repeats: int) -> list[float]:
    import ray

    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
        ray.shutdown()
        seconds.append(time.perf_counter() - start)
    return seconds


def table(record: dict) -> str:
    base = record["modes"]["1 Ray worker"]
    lines = [
        f"# Corpus attribution on Ray — {record['rows']} QuoteSum rows, {record['model']}",
        "",
        f"`{record['command']}` · commit {record['commit']} · {record['machine']} · "
        "one torch thread per process",
        "",
        "| mode | wall s | first row s | rows/s (steady) | rows/s (overall) | steady × 1 worker | "
        "s between rows (95% CI) | peak RSS MiB per process |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for name, m in record["modes"].items():
        low, high = m["seconds_between_rows_ci95"]
        lines.append(
            f"| {name} | {m['wall_seconds']:.1f} | {m['first_row_seconds']:.1f} | "
            f"{m['steady_rows_per_second']:.3f} | {m['rows_per_second']:.3f} | "
            f"{m['steady_rows_per_second'] / base['steady_rows_per_second']:.2f} | "
            f"{m['seconds_between_rows']:.2f} [{low:.2f}, {high:.2f}] | "
            f"{', '.join(str(p) for p in m['peak_rss_mib_per_process'])} |"
        )
    startup = record["ray_startup_seconds"]
    lines += [
        "",
        f"Ray's own start-up (`ray.init` + `ray.shutdown`, 2 CPUs, no work), {len(startup)} times: "
        f"median {statistics.median(startup):.1f} s. Outputs of all modes equal: {record['outputs_equal']}.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="QuoteSum JSONL (the dev split)")
    parser.add_argument("--rows", type=int, default=40)
    parser.add_argument("--output", default=str(HERE))
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with tempfile.TemporaryDirectory() as tmp:
        items = read_corpus(corpus_file(args.data, args.rows, Path(tmp)))
        modes = {}
        for name, workers in MODES.items():
            print(f"{name}…", file=sys.stderr, flush=True)
            modes[name] = run_mode(items, workers)
    outputs = {name: m.pop("output") for name, m in modes.items()}
    record = {
        "command": "python " + shlex.join(["benchmarks/scale/run.py", *sys.argv[1:]]),
        "model": "smollm2-135m-instruct",
        "data": f"{args.data} (first {args.rows} examples)",
        "rows": len(items),
        "commit": git_commit(),
        "machine": f"{os.cpu_count()} CPUs, {platform.machine()}",
        "modes": modes,
        "ray_startup_seconds": ray_startup(3),
        "outputs_equal": len({json.dumps(o) for o in outputs.values()}) == 1,
    }
    out = Path(args.output)
    write_atomic(out / "results.json", (json.dumps(record, indent=2) + "\n").encode())
    write_atomic(out / "results.md", table(record).encode())
    print(table(record))


if __name__ == "__main__":
    main()
