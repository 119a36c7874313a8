"""Built-in KV-benchmark tasks that need no hub.

* ``needle``: a magic number hidden in a haystack of Paul Graham essays;
* RULER-style synthetic tasks (Hsieh et al., 2024) over the same haystack: ``multikey`` (several
  needles, one asked), ``multivalue`` (one key, several values, all asked), ``vartrack`` (a chain
  of variable assignments) and ``cwe`` (the most common words of a list);
* ``qa``: QuoteSum dev questions with their own passages as context, the short answers as
  references.

Every generator is deterministic for a seed, builds contexts of about ``length`` tokens, and sets
an answer prefix and a token budget so that answers start at once (RULER does the same). The
haystack is fetched once by an explicit step (:mod:`rcstat.evaluation.kv.haystack`).
"""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Sequence
from pathlib import Path

from pydantic import StrictStr

from rcstat.errors import RCStatError
from rcstat.evaluation.attribution.data import QuoteSumSources
from rcstat.evaluation.kv.haystack import paul_graham_essays
from rcstat.evaluation.kv.samples import Sample
from rcstat.io import read_records
from rcstat.schemas import Text

CWE_INTRO = (
    "Below is a numbered list of words. In these words, some appear more often than others. "
    "Memorize the ones that appear most often."
)
CITIES = ("Lisbon", "Nairobi", "Oslo", "Lima", "Hanoi", "Quito", "Tbilisi", "Perth", "Accra", "Riga")


def _sentences(haystack: Sequence[str]) -> list[str]:
    return [s.strip() + "." for text in haystack for s in text.replace("\n", " ").split(". ") if s.strip()]


def _filler(tokenizer, sentences: list[str], length: int, rng: random.Random) -> list[str]:
    """Consecutive haystack sentences from a random start, about ``length`` tokens in all."""
    start, chosen, used = rng.randrange(len(sentences)), [], 0
    while used < length:
        sentence = sentences[(start + len(chosen)) % len(sentences)]
        used += len(tokenizer(sentence, add_special_tokens=False).input_ids) + 1
        chosen.append(sentence)
    return chosen


def _insert(chosen: list[str], items: Sequence[str], depths: Sequence[float]) -> str:
    """The sentences with ``items`` inserted at the sentence boundaries nearest ``depths``."""
    slots = [round(d * len(chosen)) for d in depths]
    out = list(chosen)
    for slot, item in sorted(zip(slots, items, strict=True), key=lambda p: -p[0]):
        out.insert(slot, item)
    return " ".join(out)


def _number(rng: random.Random) -> str:
    return str(rng.randrange(1000000, 9999999))


def needle_samples(
    tokenizer,
    haystack: Sequence[str],
    lengths: Sequence[int],
    depths: Sequence[float],
    per_cell: int = 1,
    seed: int = 0,
) -> list[Sample]:
    """Needle-in-a-haystack samples: a magic number hidden at ``depth`` of about ``length`` tokens.

    The haystack is the texts joined and cut at sentence ends; the needle goes in at the sentence
    boundary nearest the depth. Deterministic for a seed.
    """
    rng = random.Random(seed)
    sentences = _sentences(haystack)
    samples = []
    for length in lengths:
        for depth in depths:
            if not 0 <= depth <= 1:
                raise RCStatError(f"depths must be in [0, 1], got {depth}")
            for _ in range(per_cell):
                chosen = _filler(tokenizer, sentences, length, rng)
                city, number = rng.choice(CITIES), _number(rng)
                needle = f"The special magic number for {city} is {number}."
                samples.append(
                    Sample(
                        context=_insert(chosen, [needle], [depth]),
                        question=f"What is the special magic number for {city}? Answer with the number only.",
                        answers=(number,),
                        answer_prefix=f"The special magic number for {city} is",
                        max_new_tokens=10,
                        task="needle",
                        evidence=(needle,),
                    )
                )
    return samples


def multikey_samples(tokenizer, haystack: Sequence[str], length: int, n: int, seed: int = 0, keys: int = 4):
    """RULER ``niah_multikey``: ``keys`` needles with different cities; one of them is asked."""
    rng, sentences, samples = random.Random(seed), _sentences(haystack), []
    for _ in range(n):
        chosen = _filler(tokenizer, sentences, length, rng)
        cities, numbers = rng.sample(CITIES, keys), [_number(rng) for _ in range(keys)]
        needles = [f"The special magic number for {c} is {v}." for c, v in zip(cities, numbers, strict=True)]
        asked = rng.randrange(keys)
        samples.append(
            Sample(
                context=_insert(chosen, needles, [rng.random() for _ in needles]),
                question=f"What is the special magic number for {cities[asked]}? Answer with the number.",
                answers=(numbers[asked],),
                answer_prefix=f"The special magic number for {cities[asked]} is",
                max_new_tokens=10,
                task="multikey",
                evidence=(needles[asked],),
            )
        )
    return samples


def multivalue_samples(
    tokenizer, haystack: Sequence[str], length: int, n: int, seed: int = 0, values: int = 3
):
    """RULER ``niah_multivalue``: one city with ``values`` magic numbers, all asked (score: share found)."""
    rng, sentences, samples = random.Random(seed), _sentences(haystack), []
    for _ in range(n):
        chosen = _filler(tokenizer, sentences, length, rng)
        city, numbers = rng.choice(CITIES), [_number(rng) for _ in range(values)]
        needles = [f"One of the special magic numbers for {city} is {v}." for v in numbers]
        samples.append(
            Sample(
                context=_insert(chosen, needles, [rng.random() for _ in needles]),
                question=f"What are all the special magic numbers for {city} mentioned in the text?",
                answers=tuple(numbers),
                match="all",
                answer_prefix=f"The special magic numbers for {city} mentioned in the text are",
                max_new_tokens=11 * values + 4,
                task="multivalue",
                evidence=tuple(needles),
            )
        )
    return samples


def vartrack_samples(tokenizer, haystack: Sequence[str], length: int, n: int, seed: int = 0, hops: int = 3):
    """RULER ``vt``: ``VAR A = 12345``, then ``VAR B = VAR A`` … ``hops`` times; all names are asked."""
    rng, sentences, samples = random.Random(seed), _sentences(haystack), []
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    for _ in range(n):
        chosen = _filler(tokenizer, sentences, length, rng)
        names = ["".join(rng.choice(letters) for _ in range(5)) for _ in range(hops + 1)]
        value = str(rng.randrange(10000, 99999))
        chain = [f"VAR {names[0]} = {value}."] + [f"VAR {b} = VAR {a}." for a, b in itertools.pairwise(names)]
        depths = sorted(rng.random() for _ in chain)  # in order, as RULER places them
        samples.append(
            Sample(
                context=_insert(chosen, chain, depths),
                question=f"Find all variables that are assigned the value {value} in the text above.",
                answers=tuple(names),
                match="all",
                answer_prefix=(
                    f"According to the chain of variable assignments in the text above, {hops + 1} variables "
                    f"are assigned the value {value}, they are:"
                ),
                max_new_tokens=4 * (hops + 1) + 4,
                task="vartrack",
                evidence=tuple(chain),
            )
        )
    return samples


def cwe_samples(tokenizer, haystack: Sequence[str], length: int, n: int, seed: int = 0, common: int = 3):
    """RULER ``cwe``: a numbered list of words where ``common`` words recur often; all are asked."""
    rng = random.Random(seed)
    vocabulary = sorted(
        {w for text in haystack for w in text.lower().split() if w.isalpha() and 4 <= len(w) <= 9}
    )
    samples = []
    for _ in range(n):
        if len(vocabulary) < common + 8:
            raise RCStatError(f"the haystack has {len(vocabulary)} distinct words; cwe needs {common + 8}")
        words = rng.sample(vocabulary, min(400, len(vocabulary)))
        frequent, rare = words[:common], words[common:]
        entries: list[str] = []
        while len(tokenizer(_listing(entries), add_special_tokens=False).input_ids) < length * 0.9:
            entries += frequent * 4 + rng.sample(rare, 8)
        rng.shuffle(entries)
        listing = _listing(entries)
        samples.append(
            Sample(
                context=f"{CWE_INTRO}\n{listing}",
                question=f"What are the {common} most common words in the above list?",
                answers=tuple(frequent),
                match="all",
                answer_prefix=f"The top {common} words that appear most often in the list are:",
                max_new_tokens=4 * common + 4,
                task="cwe",
            )
        )
    return samples


def _listing(words: Sequence[str]) -> str:
    return "\n".join(f"{i}. {w}" for i, w in enumerate(words, start=1))


class QARecord(QuoteSumSources):
    question: Text
    covered_short_answers: StrictStr


def quotesum_qa_samples(path: str | Path, n: int | None = None) -> list[Sample]:
    """QuoteSum dev questions (one per question) with their sources as context; the short answers
    cited in the reference summary are the acceptable answers. Records that do not fit are skipped
    with a warning."""
    samples, seen = [], set()
    records = read_records(path, QARecord, strict=False)
    records.done()
    for _, row in records.rows:
        answers = tuple(a.strip() for a in re.findall(r"\[\s*\d+\s+(.*?)\s*\]", row.covered_short_answers))
        if row.question in seen or not answers:
            continue
        seen.add(row.question)
        sources = [
            f"Document [{i}] (Title: {getattr(row, f'title{i}')}) {getattr(row, f'source{i}')}"
            for i in range(1, 9)
            if getattr(row, f"source{i}")
        ]
        samples.append(
            Sample(
                context="\n\n".join(sources),
                question=f"{row.question} Answer briefly.",
                answers=answers,
                max_new_tokens=24,
                task="qa",
            )
        )
    return samples[:n] if n else samples


SYNTHETIC = {
    "multikey": multikey_samples,
    "multivalue": multivalue_samples,
    "vartrack": vartrack_samples,
    "cwe": cwe_samples,
}
TASKS = ("needle", *SYNTHETIC, "qa")


def check_tasks(names: Sequence[str]) -> None:
    """Known task names, at least one."""
    unknown = [n for n in names if n not in TASKS]
    if unknown or not names:
        raise RCStatError(
            f"unknown task {', '.join(unknown) or '(none given)'}; choose from {', '.join(TASKS)}",
            option="task",
        )


def builtin_samples(
    tokenizer,
    names: Sequence[str],
    per_task: int,
    lengths: Sequence[int],
    depths: Sequence[float] = (0.1, 0.3, 0.5, 0.7, 0.9),
    seed: int = 0,
    qa_data: str | Path | None = None,
) -> list[Sample]:
    """``per_task`` samples of each named task; synthetic ones cycle through ``lengths`` (needle also
    through ``depths``). ``qa`` needs ``qa_data``, a QuoteSum JSONL file."""
    check_tasks(names)
    if "qa" in names and qa_data is None:
        raise RCStatError(
            "task qa needs QuoteSum data: a JSONL file "
            "(public at github.com/google-research-datasets/QuoteSum)",
            option="qa_data",
        )
    haystack = paul_graham_essays() if set(names) - {"qa"} else []
    samples: list[Sample] = []
    for name in names:
        if name == "qa":
            found = quotesum_qa_samples(qa_data, per_task)
            if len(found) < per_task:
                raise RCStatError(
                    f"{qa_data} holds {len(found)} usable questions; {per_task} per task were asked for",
                    option="per_task",
                )
            samples += found
            continue
        for i in range(per_task):
            length = lengths[i % len(lengths)]
            if name == "needle":
                depth = depths[(i // len(lengths)) % len(depths)]
                samples += needle_samples(tokenizer, haystack, [length], [depth], 1, seed=seed * 100003 + i)
            else:
                samples += SYNTHETIC[name](tokenizer, haystack, length, 1, seed=seed * 100003 + i)
    return samples
