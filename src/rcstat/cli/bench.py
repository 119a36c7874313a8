"""``rcstat bench``: the KV-cache and attribution benchmarks (one module each)."""

from __future__ import annotations

from rcstat.cli import bench_attribution, bench_citations, bench_decoding, bench_kv
from rcstat.cli.common import group


def register(sub) -> None:
    benchmarks = group(
        sub,
        "bench",
        "benchmarks",
        "BENCHMARK",
        "rcstat bench kv --task needle --per-task 5 --press rcstat,snapkv,none",
        "rcstat bench attribution --dataset verigran --data dev.jsonl --method rcstat,attention",
        "rcstat bench decoding --task copy --per-task 5 --budget 64,128 --press rcstat,knorm",
    )
    bench_kv.register(benchmarks)
    bench_attribution.register(benchmarks)
    bench_decoding.register(benchmarks)
    bench_citations.register(benchmarks)
