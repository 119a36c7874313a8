"""Citation precision and recall on annotated data (``rcstat bench citations``).

Each example's response is attributed once; each sentence that overlaps an annotated span is cited
at every margin of a sweep, and its citations are compared with the chunks its annotations name (the
union over the spans it overlaps). Precision: cited chunks that are named, over chunks cited;
recall: named chunks that are cited, over chunks named; both with 95% Wilson intervals over the
pooled counts (sentences of one response are not independent: the intervals are optimistic), and F1.
Sentences with no annotation are left out (their text is the response's own).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rcstat.attribution.attributor import Attributor
from rcstat.attribution.citations import choose, sentence_scores
from rcstat.attribution.scoring import Scoring
from rcstat.evaluation.attribution.data import Example, Loaded
from rcstat.evaluation.intervals import wilson
from rcstat.evaluation.provenance import git_commit


def sentence_gold(example: Example, start: int, end: int) -> frozenset[int]:
    """The chunks the annotations overlapping ``[start, end)`` name."""
    return frozenset().union(*(t.gold for t in example.targets if t.start < end and t.end > start))


def example_counts(attributor: Attributor, example: Example, margins: Sequence[float]) -> dict:
    """Per margin ``[true citations, citations, gold chunks cited, gold chunks]`` of one example."""
    result = attributor.attribute(list(example.chunks), example.query, example.response)
    counts = {str(m): [0, 0, 0, 0] for m in margins}
    for (start, end), scores in sentence_scores(result, "chunk"):
        gold = sentence_gold(example, start, end)
        if not gold:
            continue
        for m in margins:
            cited = set(choose(scores, m))
            row = counts[str(m)]
            row[0] += len(cited & gold)
            row[1] += len(cited)
            row[2] += len(gold & cited)
            row[3] += len(gold)
    return counts


def summarise_citations(records: Sequence[dict], margins: Sequence[float]) -> list[dict]:
    """Per margin: precision, recall (95% Wilson) and F1 over the pooled counts."""
    rows = []
    for m in margins:
        tp, cited, found, gold = (sum(r["counts"][str(m)][i] for r in records) for i in range(4))
        precision = tp / cited if cited else float("nan")
        recall = found / gold if gold else float("nan")
        f1 = 2 * precision * recall / (precision + recall) if cited and tp else 0.0
        rows.append(
            {
                "margin": m,
                "precision": precision,
                "precision_ci95": list(wilson(tp, cited)),
                "recall": recall,
                "recall_ci95": list(wilson(found, gold)),
                "f1": f1,
                "citations": cited,
                "gold": gold,
            }
        )
    return rows


def run_citation_bench(
    model,
    tokenizer,
    examples: Sequence[Example],
    margins: Sequence[float],
    scoring: Scoring | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[dict]:
    """One record per example: its index and counts per margin."""
    attributor = Attributor(model, tokenizer, scoring=scoring)
    records = []
    for index, example in enumerate(examples):
        records.append({"example": index, "counts": example_counts(attributor, example, margins)})
        if progress:
            progress(index + 1, len(examples))
    return records


def run(
    model,
    tokenizer,
    loaded: Loaded,
    margins: Sequence[float],
    scoring: Scoring | None = None,
    strict: bool = False,
    progress: Callable[[int, str], Callable[[int, int], None]] | None = None,
    meta: dict | None = None,
) -> dict:
    """``rcstat bench citations``: the examples too long for the model skipped and reported, the rest
    cited at every margin; the run's record (``meta`` first, then the data's, ``results``, ``records``).
    ``progress(total, unit)`` makes the callback told ``(done, total)`` as examples finish."""
    scoring = scoring or Scoring()
    loaded = loaded.fitting(model, tokenizer, strict)
    update = progress(len(loaded.examples), "examples") if progress else None
    records = run_citation_bench(model, tokenizer, loaded.examples, margins, scoring, update)
    return {
        **(meta or {}),
        "examples": len(loaded.examples),
        **loaded.record(),
        "scoring": repr(scoring),
        "commit": git_commit(),
        "results": summarise_citations(records, margins),
        "records": records,
    }
