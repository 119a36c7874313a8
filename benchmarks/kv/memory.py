"""Real memory of head-adaptive eviction: full vs. kvpress's masked vs. the ragged cache (issue 6).

For each context length and compression ratio, one live prefill per cache kind on the default
model (RCStatPress, head-adaptive, compressing layer by layer inside the forward pass, as in
kvpress's pipeline), then a question and 256 greedily decoded tokens (end tokens ignored, so every
kind decodes the same number of steps):

* ``full``: a plain ``DynamicCache``, no press, the model's ``sdpa``;
* ``masked``: kvpress's way: the evicted entries stay in the cache and are masked while decoding
  (kvpress's attention patch on ``sdpa``);
* ``ragged``: :class:`rcstat.kv.ragged.RaggedCache` through ``RaggedPress``: only kept entries are held.

Measured: bytes the cache holds after compression and after decoding (:func:`cache_bytes`), the
peak resident memory each phase added (``VmHWM``), seconds per decoded token, and whether the
ragged cache decodes the masked cache's tokens. A second part checks that the KV benchmark's
answers for head-adaptive presses (rcstat, adakv) are the same from the ragged cache, on samples
built as in ``benchmarks/kv/run.sh``.

    python benchmarks/kv/memory.py [--lengths 2048,4096,8192] [--ratios 0.5,0.75,0.9]
        [--new-tokens 256] [--agreement-per-task 4] [--threads N] [--output benchmarks/kv/memory]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch
from kvpress import AdaKVPress, SnapKVPress
from transformers import DynamicCache, pipeline

from rcstat.evaluation.kv.tasks import builtin_samples
from rcstat.evaluation.provenance import git_commit
from rcstat.io import write_atomic
from rcstat.kv.decode import greedy_answers
from rcstat.kv.memory import cache_bytes, peak_extra_bytes
from rcstat.kv.ragged import RaggedCache, RaggedPress, ragged_attention
from rcstat.kv.replay import record_prefill, replay
from rcstat.models.loading import load_model
from rcstat.models.logits import attention_layers
from rcstat.presses import rc_press

KINDS = ("full", "masked", "ragged")
HEAD_ADAPTIVE = {
    "rcstat": lambda r: rc_press(r),
    "adakv": lambda r: AdaKVPress(SnapKVPress(compression_ratio=r)),
}


def _clear_masks(model) -> None:
    for layer in attention_layers(model):
        layer.module.masked_key_indices = None


def _decode(model, cache, question: torch.Tensor, start: int, steps: int) -> tuple[list[int], float]:
    """Feed the question, then ``steps`` greedy tokens; seconds per token of the greedy steps."""
    with torch.no_grad():
        positions = torch.arange(start, start + question.shape[1])[None]
        out = model(input_ids=question, past_key_values=cache, position_ids=positions, logits_to_keep=1)
        ids, tokens, at = out.logits[:, -1:].argmax(-1), [], start + question.shape[1]
        began = time.perf_counter()
        for step in range(steps):
            tokens.append(int(ids))
            out = model(input_ids=ids, past_key_values=cache, position_ids=torch.tensor([[at + step]]))
            ids = out.logits[:, -1:].argmax(-1)
        return tokens, (time.perf_counter() - began) / steps


def run_kind(
    model, kind: str, ratio: float, context: torch.Tensor, question: torch.Tensor, steps: int
) -> dict:
    gc.collect()
    cache = RaggedCache(model.config) if kind == "ragged" else DynamicCache(config=model.config)
    press = None if kind == "full" else rc_press(ratio)
    if kind == "ragged":
        press = RaggedPress(press)

    def prefill() -> float:
        began = time.perf_counter()
        with press(model) if press else contextlib.nullcontext(), torch.no_grad():
            model.get_decoder()(input_ids=context, past_key_values=cache)
        return time.perf_counter() - began

    seconds, prefill_peak = peak_extra_bytes(prefill)
    held = cache_bytes(cache)
    with ragged_attention(model) if kind == "ragged" else contextlib.nullcontext():
        (tokens, per_token), decode_peak = peak_extra_bytes(
            lambda: _decode(model, cache, question, context.shape[1], steps)
        )
    _clear_masks(model)
    return {
        "kind": kind,
        "ratio": ratio,
        "prefill_seconds": seconds,
        "bytes_after_compression": held,
        "bytes_after_decoding": cache_bytes(cache),
        "prefill_peak_extra_bytes": prefill_peak,
        "decode_peak_extra_bytes": decode_peak,
        "seconds_per_token": per_token,
        "tokens": tokens,
    }


def memory_part(model, tokenizer, lengths, ratios, steps, log) -> list[dict]:
    pipe = pipeline("kv-press-text-generation", model=model, tokenizer=tokenizer)
    limit = model.config.max_position_embeddings
    rows = []
    for length in lengths:
        (sample,) = builtin_samples(tokenizer, ["needle"], 1, [length], seed=0)
        inputs = pipe.preprocess(
            sample.context, [sample.question], answer_prefix="", max_context_length=10**9
        )
        question = inputs["questions_ids"][0]
        room = limit - question.shape[1] - steps - 1  # the model's positions end at `limit`
        context = (
            inputs["context_ids"][:, -room:]
            if inputs["context_ids"].shape[1] > room
            else inputs["context_ids"]
        )
        full = run_kind(model, "full", 0.0, context, question, steps)
        full_bytes = full["bytes_after_compression"]
        for ratio in ratios:
            for kind in ("full", "masked", "ragged") if ratio == ratios[0] else ("masked", "ragged"):
                row = full if kind == "full" else run_kind(model, kind, ratio, context, question, steps)
                row = {**row, "ratio": 0.0 if kind == "full" else ratio, "length": length}
                row["context_tokens"] = int(context.shape[1])
                row["held_fraction"] = row["bytes_after_compression"] / full_bytes
                rows.append(row)
                log(
                    f"{length} {kind} {row['ratio']}: held {row['held_fraction']:.3f}, "
                    f"{row['seconds_per_token'] * 1000:.1f} ms/token"
                )
    for row in rows:  # ragged vs masked at the same length and ratio, and vs full
        base = next(r for r in rows if r["length"] == row["length"] and r["kind"] == "full")
        row["time_vs_full"] = row["seconds_per_token"] / base["seconds_per_token"]
        if row["kind"] == "ragged":
            masked = next(
                r
                for r in rows
                if r["length"] == row["length"] and r["ratio"] == row["ratio"] and r["kind"] == "masked"
            )
            row["time_vs_masked"] = row["seconds_per_token"] / masked["seconds_per_token"]
            row["bytes_vs_masked"] = row["bytes_after_compression"] / masked["bytes_after_compression"]
            row["kept_fraction"] = 1 - row["ratio"]
            row["held_vs_kept_share"] = row["held_fraction"] / row["kept_fraction"]
            same_tokens = [a == b for a, b in zip(row["tokens"], masked["tokens"], strict=True)]
            row["tokens_equal_to_masked"] = sum(same_tokens) / len(same_tokens)
            row["first_divergence"] = same_tokens.index(False) if False in same_tokens else None
    return rows


def agreement_part(model, tokenizer, per_task: int, ratios, qa_data: str, log) -> dict:
    """The KV benchmark's masked answers vs. answers from the ragged cache, same samples and presses."""
    pipe = pipeline("kv-press-text-generation", model=model, tokenizer=tokenizer)
    tasks = ["needle", "multikey", "multivalue", "cwe", "qa"]
    samples = builtin_samples(tokenizer, tasks, per_task, [1024], seed=0, qa_data=qa_data)
    cells: dict[str, list[tuple[float, float, bool]]] = {}
    for number, sample in enumerate(samples, 1):
        inputs = pipe.preprocess(
            sample.context + "\n" + sample.question,
            [""],
            answer_prefix=sample.answer_prefix,
            max_context_length=10**9,
        )
        context, question = inputs["context_ids"], inputs["questions_ids"][0]
        budget = min(sample.max_new_tokens or 64, 64)
        record = record_prefill(model, context)
        for name, make in HEAD_ADAPTIVE.items():
            for ratio in ratios:
                compressed = replay(record, make(ratio))
                (masked,) = greedy_answers(model, tokenizer, question, [compressed], budget)
                _clear_masks(model)
                ragged = RaggedCache.from_cache(compressed.cache, compressed.masks, record.length)
                with ragged_attention(model):
                    answer = pipe.generate_answer(question, ragged, record.length, budget)
                cells.setdefault(f"{name}@{ratio:g}", []).append(
                    (sample.score(masked), sample.score(answer), masked.strip() == answer.strip())
                )
        log(f"agreement: sample {number}/{len(samples)}")
    return {
        key: {
            "n": len(v),
            "score_masked": statistics.fmean(s for s, _, _ in v),
            "score_ragged": statistics.fmean(s for _, s, _ in v),
            "same_answer": statistics.fmean(float(e) for _, _, e in v),
        }
        for key, v in cells.items()
    }


def markdown(meta: dict, rows: list[dict], agreement: dict) -> str:
    mib = 2**20
    lines = [
        f"# Real memory of head-adaptive eviction: {meta['model']}",
        "",
        f"RCStatPress (head-adaptive) at each ratio; needle-in-a-haystack contexts (Paul Graham essays), "
        f"{meta['new_tokens']} greedy tokens after the question; {meta['threads']} CPU threads; "
        f"commit {meta['commit']}; {meta['date']}.",
        "",
        f"Reproduce: `{meta['command']}`",
        "",
        "*held* = bytes the cache holds after compression, over the full cache's; *kept share* = "
        "1 − ratio (what the press keeps); peaks are resident memory added during prefill+compression "
        "and during decoding (Linux `VmHWM`); time is per decoded token.",
        "",
        "| context | cache | ratio | held | held / kept share | MiB after compression | MiB after decoding "
        "| peak MiB prefill | peak MiB decode | ms / token | vs full | vs masked | tokens = masked |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['context_tokens']} | {r['kind']} | {r['ratio']:g} | {r['held_fraction']:.3f} | "
            f"{_num(r.get('held_vs_kept_share'), '.3f')} | {r['bytes_after_compression'] / mib:.1f} | "
            f"{r['bytes_after_decoding'] / mib:.1f} | {_num(r['prefill_peak_extra_bytes'], '.0f', mib)} | "
            f"{_num(r['decode_peak_extra_bytes'], '.0f', mib)} | {r['seconds_per_token'] * 1000:.1f} | "
            f"{r['time_vs_full']:.2f}× | {_times(r.get('time_vs_masked'))} | "
            f"{_num(r.get('tokens_equal_to_masked'), '.3f')} |"
        )
    if agreement:
        lines += [
            "",
            "## KV benchmark answers from the ragged cache",
            "",
            f"Samples built as in `benchmarks/kv/run.sh` (needle, multikey, multivalue, cwe, qa; ~1k tokens; "
            f"query-aware), {meta['agreement_per_task']} per task; answers decoded from kvpress's masked "
            "cache (as the benchmark does) and from the ragged cache holding the same keep-sets.",
            "",
            "| press | n | score (masked) | score (ragged) | same answer |",
            "|---|---:|---:|---:|---:|",
        ]
        for key, a in agreement.items():
            lines.append(
                f"| {key} | {a['n']} | {a['score_masked']:.3f} | {a['score_ragged']:.3f} | "
                f"{a['same_answer']:.3f} |"
            )
    return "\n".join(lines) + "\n"


def _num(value, fmt: str, scale: float = 1.0) -> str:
    return "–" if value is None else format(value / scale, fmt)


def _times(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}×"


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (held, speed) = plt.subplots(1, 2, figsize=(10, 3.8))
    for length in sorted({r["context_tokens"] for r in rows}):
        for kind, style in (("masked", "s--"), ("ragged", "o-")):
            mine = [r for r in rows if r["context_tokens"] == length and r["kind"] == kind]
            ratios = [r["ratio"] for r in mine]
            held.plot(ratios, [r["held_fraction"] for r in mine], style, label=f"{kind}, {length} tokens")
            speed.plot(ratios, [r["time_vs_full"] for r in mine], style, label=f"{kind}, {length} tokens")
    ratios = sorted({r["ratio"] for r in rows if r["kind"] != "full"})
    held.plot(ratios, [1 - r for r in ratios], "k:", label="kept share (1 − ratio)")
    held.set(
        xlabel="compression ratio", ylabel="bytes held / full cache", title="Memory held after compression"
    )
    speed.axhline(1.0, color="k", lw=0.8)
    speed.set(xlabel="compression ratio", ylabel="time per token / full cache", title="Decoding time")
    held.legend(fontsize=7)
    speed.legend(fontsize=7)
    fig.tight_layout()
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    write_atomic(path, buffer.getvalue())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default="2048,4096,8192")
    parser.add_argument("--ratios", default="0.5,0.75,0.9")
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--agreement-per-task", type=int, default=4)
    parser.add_argument("--qa-data", default="../shared/data/quotesum_dev.jsonl")
    parser.add_argument("--output", type=Path, default=Path("benchmarks/kv/memory"))
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    lengths = [int(x) for x in args.lengths.split(",")]
    ratios = [float(x) for x in args.ratios.split(",")]

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    model, tokenizer = load_model(attn_implementation="sdpa")
    rows = memory_part(model, tokenizer, lengths, ratios, args.new_tokens, log)
    agreement = (
        agreement_part(model, tokenizer, args.agreement_per_task, ratios, args.qa_data, log)
        if args.agreement_per_task
        else {}
    )
    meta = {
        "model": "smollm2-135m-instruct (embedded default, float32)",
        "commit": git_commit(),
        "command": "python benchmarks/kv/memory.py " + shlex.join(sys.argv[1:] if argv is None else argv),
        "date": time.strftime("%Y-%m-%d"),
        "threads": torch.get_num_threads(),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "new_tokens": args.new_tokens,
        "agreement_per_task": args.agreement_per_task,
    }
    for row in rows:
        row.pop("tokens")
    write_atomic(
        args.output / "results.json",
        json.dumps({"meta": meta, "rows": rows, "agreement": agreement}, indent=1).encode(),
    )
    write_atomic(args.output / "results.md", markdown(meta, rows, agreement).encode())
    plot(rows, args.output / "results.png")
    print(args.output / "results.md")


if __name__ == "__main__":
    main()
