"""Plain-text views of results, for a terminal: each takes a result's JSON form (a dict) and returns text."""

from __future__ import annotations

from collections.abc import Sequence

MIB = 2**20


def clip(text: str, width: int) -> str:
    """One line of at most ``width`` characters, cut at a word boundary."""
    text = " ".join(text.split())  # one line, whatever the source's own line breaks
    if len(text) <= width:
        return text
    cut = text[: width - 1]
    return (cut.rsplit(" ", 1)[0] if " " in cut else cut).rstrip(" ,;:") + "…"


QUERY_AGNOSTIC = (
    "query-agnostic: compressed before the question was seen (the harder setting, lower in the README's "
    "KV benchmark); --query-aware puts the question in the window"
)


def compression_notes(record: dict) -> list[str]:
    """Notes on a compression: its mode when query-agnostic, and the layers it emptied."""
    notes = [] if record.get("query_aware", True) else [QUERY_AGNOSTIC]
    emptied = record.get("emptied_layers") or []
    if emptied:
        layers = len(record["realised_ratio_per_layer"])
        notes.append(
            f"{len(emptied)} of {layers} layers keep nothing but the press's sinks and window "
            f"(layers {', '.join(map(str, emptied))}): a lower ratio keeps some of the context in each"
        )
    return notes


def compression_text(record: dict) -> str:
    """A compression (``CompressionReport.to_dict()``): answer (and the full cache's), press, ratio,
    bytes, times, per layer, notes."""
    full, held = record["kv_bytes_full"], record["kv_bytes_held"]
    masked = (
        " (per-head budgets are masked, not freed)" if held == full and record["realised_ratio"] > 0 else ""
    )
    per_layer = " ".join(f"{r:.2f}" for r in record["realised_ratio_per_layer"])
    answers = [f"answer: {record['answer']}"]
    if record.get("full_cache_answer") is not None:
        answers.append(f"full cache's answer: {record['full_cache_answer']}")
    return "\n".join(
        [
            *answers,
            f"press: {record['press']}   cache: {record['cache']}",
            f"context: {record['context_tokens']} tokens; realised ratio {record['realised_ratio']:.3f}; "
            f"KV bytes {full / MIB:.1f} MiB full, {held / MIB:.1f} MiB held{masked}",
            "time: " + ", ".join(f"{k} {v:.2f} s" for k, v in record["seconds"].items()),
            f"realised ratio per layer: {per_layer}",
            *(f"note: {note}" for note in compression_notes(record)),
        ]
    )


def generation_text(record: dict) -> str:
    """A generation under compression (``GenerationReport.to_dict()``): text, budget, bytes, time."""
    steps = record["steps"]
    peak = max(s["held_bytes"] for s in steps)
    final = steps[-1]
    return "\n".join(
        [
            record["text"],
            "",
            f"press: {record['press']}   budget: {record['budget'] or 'none (the full cache)'}   "
            f"interval: {record['interval'] or '-'}",
            f"prompt {record['prompt_tokens']} tokens, generated {record['generated_tokens']}; "
            f"{record['seconds_per_token'] * 1000:.1f} ms per token (scoring and eviction "
            f"{record['compress_seconds']:.2f} s in all)",
            f"KV bytes at the last step: {final['held_bytes'] / MIB:.2f} MiB held{held_parts(record)}, "
            f"{final['full_bytes'] / MIB:.2f} MiB uncompressed; most held at any step {peak / MIB:.2f} MiB",
        ]
    )


def held_parts(record: dict) -> str:
    """`` (… keys and values, … positions, … room to grow)``: what the last step's held bytes hold."""
    parts = record.get("held_bytes_last_step") or {}
    if not parts:
        return ""
    names = {"keys_and_values": "keys and values", "positions": "positions", "room_to_grow": "room to grow"}
    return " (" + ", ".join(f"{parts[k] / MIB:.2f} MiB {name}" for k, name in names.items()) + ")"


def demo_text(record: dict) -> str:
    """The demo (``DemoResult.to_dict()``)."""
    lines = [
        f"model: {record['model']}",
        f"scoring: {record['scoring']}",
        f"question: {record['question']}",
        f"answer: {record['answer']}",
        f"({record['prompt_tokens']} prompt tokens, {record['answer_tokens']} answer tokens, "
        "one forward pass)",
        "",
        f"passages scored by E[RC] over the top {len(record['top_heads'])} heads:",
    ]
    best = max(p["score"] for p in record["passages"])
    for p in record["passages"]:
        mark = "→" if p["score"] == best else " "
        lines.append(f" {mark} [{p['index']}] {p['score']:7.3f}  {clip(p['text'], 70)}")
    lines += ["", "top heads by E[RC] of the whole context against the answer:"]
    lines += [
        f"   layer {h['layer']:2d} head {h['head']}: {h['expected_rc']:.3f}" for h in record["top_heads"][:5]
    ]
    lines += ["", "the five estimators for the top head and the best passage (always in this order):"]
    lines.append(
        "   " + "  ≤  ".join(f"{k} {v:.3f}" for k, v in record["bounds_top_head_best_passage"].items())
    )
    if "compression" in record:
        lines += ["", "compressing the same passages by half (rcstat press), then answering:"]
        lines.append(compression_text(record["compression"]))
    return "\n".join(lines)


def attribution_text(record: dict, granularity: str) -> str:
    """One attributed span (``SpanAttribution.to_dict()`` plus ``response``): sources, best first."""
    lines = [f"response: {record['response']}", f"target: {record['target']['text']!r}", ""]
    lines += [f"{'score':>8}  source ({granularity})"]
    lines += [f"{s['score']:8.3f}  [{s['source']}] {clip(s['text'], 90)}" for s in record["sources"]]
    return "\n".join(lines)


def _num(value: float | None, spec: str = ".3f") -> str:
    return "–" if value is None else format(value, spec)


def skipped_line(result: dict) -> list[str]:
    """A line under a table saying which records of the data were left out (none: no line)."""
    skipped = result.get("skipped") or []
    recovered = result.get("recovered") or 0
    lines = []
    if skipped:
        records = ", ".join(str(s["record"]) for s in skipped[:10]) + (", …" if len(skipped) > 10 else "")
        lines.append(f"skipped {len(skipped)} record(s) of the data that could not be used: {records}")
    if recovered:
        lines.append(f"recovered {recovered} record(s) by normalising quotes, spaces or Unicode")
    return lines


def evidence_text(row: dict | None) -> str:
    """A KV row's evidence kept: the global layers' share, then the sliding layers' where there are any."""
    kept = (row or {}).get("evidence_kept")
    if not kept:
        return "–"
    return " / ".join(f"{kept[kind]:.2f}" for kind in ("global", "sliding") if kind in kept)


def kv_table(result: dict) -> str:
    """A KV benchmark run (its record with ``results``): one markdown row per press × ratio."""
    rows: Sequence[dict] = result["results"]
    aware = "query-aware" if result["query_aware"] else "query-agnostic"
    lines = [
        f"model {result['model']}, data {result['data']}, {aware}",
        "| press | ratio / τ | score | 95% CI | agrees with full cache | evidence kept | n | seen "
        "| compression s |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if not r["n"]:
            continue  # a cell no sample ran (the oracle without evidence)
        low, high = r["ci95"]
        at = f"τ={r['threshold']:g}" if r.get("mode") == "threshold" else f"{r['compression_ratio']:.2f}"
        lines.append(
            f"| {r['press']} | {at} | {r['accuracy']:.3f} | [{low:.3f}, {high:.3f}] | "
            f"{_num(r['agreement_with_full_cache'])} | {evidence_text(r)} | {r['n']} | "
            f"{1 - r['realised_ratio']:.3f} | "
            f"{r['compression_seconds_mean']:.3f} |"
        )
    return "\n".join(lines + skipped_line(result))


def attribution_bench_table(result: dict) -> str:
    """An attribution benchmark run (its record with ``results``): one markdown row per method."""
    lines = [
        f"model {result['model']}, {result['dataset']} {result['data']}: {result['examples']} examples, "
        f"top-{result['top_k']} heads{_held(result)}",
        "| method | top-1 accuracy | 95% CI | n | log-prob drop @1 | @3 | s / example |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for r in result["results"]:
        low, high = r["ci95"]
        drops = [_num(r["logprob_drop@1"], ".2f"), _num(r["logprob_drop@3"], ".2f")]
        lines.append(
            f"| {r['method']} | {r['accuracy']:.3f} | [{low:.3f}, {high:.3f}] | {r['n']} | {drops[0]} | "
            f"{drops[1]} | {r['seconds_per_example']:.2f} |"
        )
    return "\n".join(lines + skipped_line(result))


def _held(result: dict) -> str:
    """The context lengths a long-context run held, beside the one asked (none asked: nothing)."""
    if not result.get("context_tokens") or not result.get("context_tokens_range"):
        return ""
    low, high = result["context_tokens_range"]
    return f", contexts of {low}–{high} tokens ({result['context_tokens']} asked)"


def citations_table(result: dict) -> str:
    """A citation benchmark run: one markdown row per margin."""
    lines = [
        f"model {result['model']}, {result['dataset']} {result['data']} ({result['examples']} examples)",
        "| margin | precision | 95% CI | recall | 95% CI | F1 | citations | gold |",
        "|---:|---:|---|---:|---|---:|---:|---:|",
    ]
    for r in result["results"]:
        (pl, ph), (rl, rh) = r["precision_ci95"], r["recall_ci95"]
        lines.append(
            f"| {r['margin']:g} | {_num(r['precision'])} | [{pl:.3f}, {ph:.3f}] | {_num(r['recall'])} | "
            f"[{rl:.3f}, {rh:.3f}] | {r['f1']:.3f} | {r['citations']} | {r['gold']} |"
        )
    return "\n".join(lines + skipped_line(result))
