"""Support of citations on annotated data (``rcstat bench support``).

Backed sentences: the annotated sentences of each response, attributed in the response. Unbacked:
the first sentence of another example's response (another topic) appended to the response, and a
backed sentence with its first number (else a name the context holds) swapped for one the context
does not hold. Each probe gets its support (:mod:`rcstat.attribution.support`); the summary gives
the AUROC of support, backed against each kind of unbacked sentence, and the precision and recall
of "cites nothing" at thresholds, with citation precision and recall on the backed sentences
(:mod:`rcstat.evaluation.attribution.support_summary`). A run with a log resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from rcstat.attribution.attributor import Attributor
from rcstat.attribution.citations import candidates, choose, sentence_scores
from rcstat.attribution.sources import sentence_spans
from rcstat.attribution.support import (
    content_words,
    null_task,
    overlap,
    response_logprobs,
    token_logprobs,
)
from rcstat.errors import RCStatError
from rcstat.evaluation.attribution.citations import sentence_gold
from rcstat.evaluation.attribution.data import Example
from rcstat.evaluation.runlog import run_samples
from rcstat.options import DEFAULT_CITE_MARGIN

_NUMBER = re.compile(r"\b\d[\d,]*(?:\.\d+)?\b")
_NAME = re.compile(r"(?<=[a-z,] )[A-Z][a-z]+")  # a capitalised word inside a sentence


def swap(sentence: str, context: str, other: str) -> tuple[str, str] | None:
    """``sentence`` with its first number shifted to one ``context`` does not hold, else its first
    name that ``context`` holds replaced by a name of ``other`` it does not; ``(text, kind)``."""
    for match in _NUMBER.finditer(sentence):
        digits = match.group().replace(",", "")
        decimals = len(digits.partition(".")[2])
        for step in (7, 13, 3, 29):
            new = f"{float(digits) + step:.{decimals}f}"
            if new not in context.replace(",", ""):
                return sentence[: match.start()] + new + sentence[match.end() :], "number"
    names = [m for m in _NAME.finditer(sentence) if m.group() in context]
    fresh = [w for w in dict.fromkeys(_NAME.findall(other)) if w not in context]
    if names and fresh:
        return sentence[: names[0].start()] + fresh[0] + sentence[names[0].end() :], "name"
    return None


def probe(example: Example, other: Example) -> tuple[str, list[tuple[int, str, str]]]:
    """The response with one backed sentence swapped and another topic's sentence appended, and the
    probes ``(start, kind, text)`` in it."""
    response, probes = example.response, []
    context = "\n".join(example.chunks)
    for a, b in sentence_spans(response):
        if not sentence_gold(example, a, b):
            continue
        swapped = swap(response[a:b], context, other.response + " " + " ".join(other.chunks))
        if swapped:
            response = response[:a] + swapped[0] + response[b:]
            probes.append((a, f"swap-{swapped[1]}", swapped[0]))
            break
    foreign = [other.response[a:b] for a, b in sentence_spans(other.response) if b - a > 20]
    if foreign:
        probes.append((len(response.rstrip()) + 1, "other-topic", foreign[0]))
        response = response.rstrip() + " " + foreign[0]
    return response, probes


def pair(examples: Sequence[Example]) -> list[Example]:
    """Each example's other topic: example ``i + len // 2`` of the same slice (mod its length); an
    error when a pair shares its question or a passage."""
    others = [*examples[len(examples) // 2 :], *examples[: len(examples) // 2]]
    for number, (example, other) in enumerate(zip(examples, others, strict=True)):
        if example.query == other.query or set(example.chunks) & set(other.chunks):
            raise RCStatError(f"example {number}: its other topic shares its question or a passage")
    return others


def overlaps(example: Example, other: Example) -> dict:
    """The text-only record of ``example``: the :func:`rcstat.attribution.support.overlap` of each
    backed sentence and of each unbacked probe (kind, text) with the context; no model."""
    context = content_words("\n".join(example.chunks))
    spans = [s for s in sentence_spans(example.response) if sentence_gold(example, *s)]
    return {
        "backed": [{"overlap": overlap(example.response[a:b], context)} for a, b in spans],
        "unbacked": [
            {"kind": kind, "text": text, "overlap": overlap(text, context)}
            for _, kind, text in probe(example, other)[1]
        ],
    }


def with_overlap(example: Example, other: Example, results: dict) -> dict:
    """A logged record of ``example`` with each sentence's overlap added (:func:`overlaps`)."""
    found = overlaps(example, other)
    for part in ("backed", "unbacked"):
        if len(found[part]) != len(results[part]):
            raise RCStatError(f"{len(results[part])} logged {part} sentences, {len(found[part])} now")
    return {
        part: [{**s, "overlap": f["overlap"]} for s, f in zip(results[part], found[part], strict=True)]
        for part in ("backed", "unbacked")
    }


def measured(logprobs: torch.Tensor) -> dict:
    """A sentence's support (the mean drop), its per-token drops and its tokens' log-probabilities
    with the whole context (nats, 5 decimals) from :func:`token_logprobs`'s ``(2, tokens)`` rows; with
    a third row (the whole context cut), ``null_drops``: each token's fall from the whole context to
    none."""
    whole, cut = logprobs[0], logprobs[1]
    out = {
        "support": float((whole - cut).mean()),
        "drops": [round(float(d), 5) for d in whole - cut],
        "logprobs": [round(float(x), 5) for x in whole],
    }
    if len(logprobs) > 2:
        out["null_drops"] = [round(float(d), 5) for d in whole - logprobs[2]]
    return out


def example_record(attributor: Attributor, example: Example, other: Example, margin: float) -> dict:
    """Backed sentences (:func:`measured` with null drops, gold and ranked citations, 0-based) and
    unbacked probes (kind, text, :func:`measured`, ranked citations), each with its overlap."""
    model, tokenizer = attributor.model, attributor.tokenizer
    result = attributor.attribute(list(example.chunks), example.query, example.response)
    sources = result.sources["chunk"]
    backed = [(span, s) for span, s in sentence_scores(result, "chunk") if sentence_gold(example, *span)]
    cuts = [(span, [(sources[i].start, sources[i].end) for i in candidates(s, margin)]) for span, s in backed]
    logprobs = token_logprobs(model, tokenizer, result, cuts, null=True)
    record = {
        "backed": [
            {
                **measured(d),
                "gold": sorted(sentence_gold(example, *span)),
                "ranked": list(choose(s, margin)),
            }
            for (span, s), d in zip(backed, logprobs, strict=True)
        ],
        "unbacked": [],
    }
    response, probes = probe(example, other)
    if probes:
        result = attributor.attribute(list(example.chunks), example.query, response)
        scored = dict(sentence_scores(result, "chunk"))
        found = [(span, p) for p in probes for span in scored if span[0] <= p[0] < span[1]]
        cuts = [
            (span, [(sources[i].start, sources[i].end) for i in candidates(scored[span], margin)])
            for span, _ in found
        ]
        logprobs = token_logprobs(model, tokenizer, result, cuts, null=True)
        record["unbacked"] = [
            {"kind": kind, "text": text, **measured(d), "ranked": list(choose(scored[span], margin))}
            for (span, (_, kind, text)), d in zip(found, logprobs, strict=True)
        ]
    return with_overlap(example, other, record)


def _null_drops(model, tokenizer, example: Example, response: str, spans, whole: list[list[float]]):
    """Each span's null drops: its logged whole-context log-probabilities less those of one pass of
    query and response with the whole context cut (:func:`rcstat.attribution.support.null_logprobs`;
    the response is tokenised alone, so its rows are the logged run's)."""
    cut = null_task(model, tokenizer, example.query, response)
    nothing = response_logprobs(model, cut.input_ids, len(cut.response_positions))
    out = []
    for (start, end), logged in zip(spans, whole, strict=True):
        null = nothing[[i for i, (a, b) in enumerate(cut.response_spans) if b > start and a < end]]
        if len(null) != len(logged):
            raise RCStatError(f"{len(logged)} logged tokens, {len(null)} now: the tokenisation changed")
        out.append([round(w - float(n), 5) for w, n in zip(logged, null, strict=True)])
    return out


def extend_record(model, tokenizer, example: Example, other: Example, results: dict) -> dict:
    """An earlier run's record of ``example`` (:func:`example_record` without null drops) with its
    null drops added from its logged whole-context log-probabilities: one pass of query and response
    per response (two per example), instead of the whole record's passes."""
    results = json.loads(json.dumps(results))
    spans = [s for s in sentence_spans(example.response) if sentence_gold(example, *s)]
    backed = results["backed"]
    if len(spans) != len(backed):
        raise RCStatError(f"{len(backed)} logged backed sentences, {len(spans)} now")
    for s, d in zip(
        backed,
        _null_drops(model, tokenizer, example, example.response, spans, [s["logprobs"] for s in backed]),
        strict=True,
    ):
        s["null_drops"] = d
    unbacked = results["unbacked"]
    if unbacked:
        response, probes = probe(example, other)
        spans = [span for p in probes for span in sentence_spans(response) if span[0] <= p[0] < span[1]]
        logged = [s["logprobs"] for s in unbacked]
        for s, d in zip(
            unbacked, _null_drops(model, tokenizer, example, response, spans, logged), strict=True
        ):
            s["null_drops"] = d
    return results


def example_key(example: Example, other: Example) -> str:
    """A short digest of an example and its other topic (a resumed log is checked against it)."""
    text = "\x00".join((example.query, example.response, *example.chunks, other.response))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _run_example(
    model, tokenizer, margin: float, commit: str, earlier: dict, index: int, example: Example, other
) -> dict:
    key = example_key(example, other)
    if key in earlier:  # an earlier run's record: add its null drops
        old = earlier[key]
        results = extend_record(model, tokenizer, example, other, old["results"])
        return {"index": index, "key": key, "commit": commit, "extends": old["commit"], "results": results}
    results = example_record(Attributor(model, tokenizer), example, other, margin)
    return {"index": index, "key": key, "commit": commit, "results": results}


def run_support_bench(
    model,
    tokenizer,
    examples: Sequence[Example],
    others: Sequence[Example],
    margin: float = DEFAULT_CITE_MARGIN,
    progress: Callable[[int, int], None] | None = None,
    *,
    log: Path | None = None,
    header: dict | None = None,
    commit: str = "",
    earlier: Sequence[dict] = (),
) -> list[dict]:
    """One record per example (``index``, ``key``, ``commit``, ``results``: :func:`example_record`);
    example ``i``'s other topic is ``others[i % len(others)]``. With ``log`` (a resumable log whose
    first line is ``header`` with the margin), records already there are reused and new ones appended.
    An example among ``earlier`` records (a log of a run before the null drops, same margin) keeps its
    record, extended by :func:`extend_record` (``extends``: the commit that ran it)."""
    items = [(i, e, others[i % len(others)]) for i, e in enumerate(examples)]
    keys = [example_key(e, o) for _, e, o in items]
    return run_samples(
        model,
        tokenizer,
        _run_example,
        (margin, commit, {r["key"]: r for r in earlier}),
        items,
        log=log,
        header={
            "benchmark": "support",
            "margin": margin,
            "tokens": "drops, logprobs, null_drops",
            **(header or {}),
        },
        keys=keys,
        progress=progress,
    )
