"""Ablation of how RC scores a source from its heads (issue 4), on a selection split of the dev data.

One forward pass per example keeps every head's logits; every variant is then scored from it:
estimator (which also ranks the heads) × Y rows × pooling over a chunk × per-head normalisation
× K. Post-softmax attention over the same top-K heads is scored alongside, as the bar to beat.
The split is the first half of the file's examples (``--split first``) or the second
(``--split second``), cut to its first ``--limit`` examples; settings are chosen on the first
40 examples of each file only (the committed runs say so in their command).

A tie for the top chunk counts as the share of the tied chunks that are gold (the expected
accuracy of breaking the tie at random), so that all-zero scores do not pick chunk 0 for free.

    python benchmarks/attribution/ablation.py --dataset verigran --data ../shared/data/verigran_dev.jsonl \
        --split first --output benchmarks/attribution/ablation/verigran-first.json
    python benchmarks/attribution/ablation.py --report benchmarks/attribution/ablation/*-first.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import shlex
import sys
import time
from pathlib import Path

import torch

from rcstat import stats
from rcstat.attribution.attributor import attribution
from rcstat.attribution.features import build_task, capture
from rcstat.attribution.pooling import DECOMPOSABLE, head_source_rc, normalise, pool_tokens, span_y, token_rc
from rcstat.attribution.profile import select_heads
from rcstat.attribution.scoring import Scoring
from rcstat.evaluation.attribution.data import load_examples
from rcstat.evaluation.attribution.scorers import pool_attention
from rcstat.evaluation.intervals import wilson
from rcstat.evaluation.provenance import git_commit
from rcstat.models import DEFAULT_MODEL, load_model
from rcstat.options import Normalisation, Pool, YRows, choices

NORMALISATIONS, POOLS, Y_ROWS = choices(Normalisation), choices(Pool), choices(YRows)

# lower and upper are left out by default: ranking the heads by them sorts every head's whole
# context × response sample (about 7 s per VeriGran example on 2 CPU threads); --estimators adds them
ESTIMATORS = ("independent", "jensen", "min_y")
KS = (5, 10, 20, 40)


def whole_rc(features, estimator: str) -> torch.Tensor:
    """Every head's E[RC] of the whole context against the whole response, ``(L, H)``."""
    if estimator == features.estimator:
        return features.head_rc
    out = []
    for layer in sorted(features.logits):
        block = features.logits[layer]  # (H, R, C + R)
        context = block.shape[-1] - block.shape[-2]
        y = span_y(block, torch.arange(block.shape[-2]), context)
        out.append(stats.expected_rc(block[:, :, :context].flatten(1), y, estimator))
    return torch.stack(out)


def hit(scores: torch.Tensor, gold: frozenset[int]) -> float:
    top = torch.nonzero(scores == scores.max()).flatten().tolist()
    return sum(t in gold for t in top) / len(top)


def variants(estimators: tuple[str, ...] = ESTIMATORS) -> list[tuple]:
    out = []
    for estimator, y, pool in itertools.product(estimators, Y_ROWS, POOLS):
        if pool == "sample" and (estimator in DECOMPOSABLE or y == "row"):
            continue  # equals mean
        out += [(estimator, y, pool, norm, k) for norm in NORMALISATIONS for k in KS]
    return out


def run(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    examples = load_examples(args.dataset, args.data).examples
    half = (len(examples) + 1) // 2
    chosen = examples[:half] if args.split == "first" else examples[half:]
    chosen = examples[args.skip :] if args.skip is not None else chosen
    chosen = chosen[: args.limit] if args.limit else chosen
    model, tokenizer = load_model(args.model)
    estimators = tuple(args.estimators.split(","))
    names = [
        *("|".join(map(str, v)) for v in variants(estimators)),
        *(f"{a}|{k}" for a in ("attention", "attention-query-max") for k in KS),
    ]
    rows_out: list[list[float]] = []
    seconds = {"pass": 0.0, "scoring": 0.0}
    for number, example in enumerate(chosen):
        t0 = time.perf_counter()
        task = build_task(model, tokenizer, list(example.chunks), example.query, example.response)
        features = capture(model, task, "independent", attention=True)
        t1 = time.perf_counter()
        result = attribution(task, features, [], granularities=("chunk",))
        groups = result.groups["chunk"]
        ranked = {e: select_heads(whole_rc(features, e), max(KS)) for e in estimators}
        for target in example.targets:
            rows = result.rows(target.start, target.end)
            hits: dict[str, float] = {}
            for estimator, y in itertools.product(estimators, Y_ROWS):
                heads = ranked[estimator]
                scoring = Scoring(estimator, max(KS), y, "mean")
                tokens = token_rc(features, heads, rows, scoring)
                for pool in POOLS:
                    if pool == "sample" and (estimator in DECOMPOSABLE or y == "row"):
                        continue
                    if pool in ("sample", "query-max"):
                        pooled = Scoring(estimator, max(KS), y, pool)
                        raw = head_source_rc(features, heads, rows, groups, pooled)
                    else:
                        raw = pool_tokens(tokens, groups, pool)
                    for norm in NORMALISATIONS:
                        normed = normalise(raw, norm)
                        for k in KS:
                            hits[f"{estimator}|{y}|{pool}|{norm}|{k}"] = hit(normed[:k].mean(0), target.gold)
            weights = torch.stack([features.attention[la][h][rows] for la, h in ranked["independent"]])
            for k in KS:  # the attention baseline (summed over a chunk), and with query-max pooling
                hits[f"attention|{k}"] = hit(pool_attention(weights[:k], groups), target.gold)
                hits[f"attention-query-max|{k}"] = hit(
                    pool_attention(weights[:k], groups, "query-max"), target.gold
                )
            rows_out.append([int(hits[n]) if hits[n] in (0, 1) else round(hits[n], 4) for n in names])
        seconds["pass"] += t1 - t0
        seconds["scoring"] += time.perf_counter() - t1
        print(f"{number + 1}/{len(chosen)} examples, {len(rows_out)} spans", file=sys.stderr, flush=True)
    record = {
        "model": args.model or DEFAULT_MODEL,
        "dataset": args.dataset,
        "data": args.data,
        "split": args.split if args.skip is None else f"skip {args.skip}",
        "examples": len(chosen),
        "spans": len(rows_out),
        "commit": git_commit(),
        "command": "python benchmarks/attribution/ablation.py " + shlex.join(sys.argv[1:]),
        "seconds": seconds,
        "variants": names,
        "hits": rows_out,
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(record, separators=(",", ":")) + "\n", encoding="utf-8")


def accuracy(record: dict) -> dict[str, float]:
    hits = torch.tensor(record["hits"], dtype=torch.float64)  # all-integer when no tie occurred
    return dict(zip(record["variants"], hits.mean(0).tolist(), strict=True))


def report(paths: list[str], top: int) -> None:
    """Variants ranked by the mean of the datasets' accuracies (each dataset weighs the same)."""
    records = [json.loads(Path(p).read_text(encoding="utf-8")) for p in paths]
    accs = [accuracy(r) for r in records]
    names = [n for n in records[0]["variants"] if all(n in r["variants"] for r in records)]
    macro = {n: sum(a[n] for a in accs) / len(accs) for n in names}
    head = " | ".join(f"{r['dataset']} ({r['split']}, {r['spans']} spans)" for r in records)
    print(f"| variant (estimator/y/pool/normalise/K) | mean | {head} |")
    print("|---|---:|" + "---:|" * len(records))

    def line(n: str) -> str:
        cells = []
        for r, a in zip(records, accs, strict=True):
            low, high = wilson(round(a[n] * r["spans"]), r["spans"])
            cells.append(f"{a[n]:.3f} [{low:.2f}, {high:.2f}]")
        return f"| {n.replace('|', ' / ')} | {macro[n]:.3f} | " + " | ".join(cells) + " |"

    ranked = sorted(names, key=lambda n: -macro[n])
    for n in ranked[:top]:
        print(line(n))
    print("\nreference rows:")
    for n in (
        "independent|span|mean|none|20",
        *(f"{a}|{k}" for a in ("attention", "attention-query-max") for k in KS if f"{a}|{k}" in macro),
    ):
        print(line(n))
    print("\nbest K per (estimator, y, pool, normalise) as marginal means:")
    for axis, values in (
        ("estimator", tuple(dict.fromkeys(n.split("|")[0] for n in names if "|" in n and n.count("|") == 4))),
        ("y", Y_ROWS),
        ("pool", POOLS),
        ("normalise", NORMALISATIONS),
        ("K", tuple(map(str, KS))),
    ):
        index = ("estimator", "y", "pool", "normalise", "K").index(axis)
        best = {
            v: max(macro[n] for n in names if not n.startswith("attention") and n.split("|")[index] == v)
            for v in values
        }
        print(f"  {axis}: " + ", ".join(f"{v} {b:.3f}" for v, b in best.items()) + " (best variant with it)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", choices=("verigran", "quotesum"))
    parser.add_argument("--data")
    parser.add_argument("--split", choices=("first", "second"), default="first")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--skip", type=int, help="instead of --split: the examples after the first N")
    parser.add_argument("--model")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--estimators", default=",".join(ESTIMATORS), help="comma-separated")
    parser.add_argument("--output")
    parser.add_argument("--report", nargs="+", help="rank the variants of these result files")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    if args.report:
        report(args.report, args.top)
    else:
        run(args)


if __name__ == "__main__":
    main()
