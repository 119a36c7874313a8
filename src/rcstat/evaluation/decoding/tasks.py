"""Built-in tasks of the decoding benchmark: the answer is a long generation that needs the whole
context while it is being written, so what a press evicts mid-generation shows in the answer.

* ``copy``: a list of made-up names with four-digit codes (``Tobemi: 4821``), about ``length``
  tokens, to be written out again; score: the share of its lines reproduced exactly (the KV
  benchmark's ``match="all"``).
* ``summary``: consecutive sentences of a Paul Graham essay, about ``length`` tokens, to be
  summarised in detail; no score of its own (the default model paraphrases when asked to repeat
  prose, so only the agreement with the full cache's own summary measures it).

Both are deterministic for a seed and reuse the KV benchmark's sample type and its haystack. The
prompts were chosen on development seeds (1000) for the full cache's own score: "Copy the list
above, line by line." makes the default model write numbers only.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from rcstat.evaluation.decoding.config import check_decoding_tasks
from rcstat.evaluation.kv.haystack import paul_graham_essays
from rcstat.evaluation.kv.samples import Sample
from rcstat.evaluation.kv.tasks import _filler, _sentences

SYLLABLES = ("ba", "ko", "mi", "ru", "te", "lo", "na", "vi", "so", "de", "pa", "gu", "ze", "fi", "ho", "ka")


def copy_samples(tokenizer, length: int, n: int, seed: int = 0) -> list[Sample]:
    """Lists of about ``length`` tokens of ``Name: code`` lines, to copy."""
    rng, samples = random.Random(seed), []
    for _ in range(n):
        lines, names, used = [], set(), 0
        while used < length:
            name = "".join(rng.choice(SYLLABLES) for _ in range(3)).capitalize()
            if name in names:
                continue
            names.add(name)
            lines.append(f"{name}: {rng.randrange(1000, 10000)}")
            used += len(tokenizer(lines[-1] + "\n", add_special_tokens=False).input_ids)
        samples.append(
            Sample(
                context="\n".join(lines),
                question="Write out the list above again, exactly as it is, one name and code per line.",
                answers=tuple(lines),
                match="all",
                task="copy",
            )
        )
    return samples


def summary_samples(tokenizer, haystack: Sequence[str], length: int, n: int, seed: int = 0) -> list[Sample]:
    """Passages of about ``length`` tokens, to summarise (no answers: fidelity only)."""
    rng, sentences = random.Random(seed), _sentences(haystack)
    samples = []
    for _ in range(n):
        chosen = _filler(tokenizer, sentences, length, rng)
        samples.append(
            Sample(
                context=" ".join(chosen),
                question="Summarise the text above in detail.",
                answers=(),
                task="summary",
            )
        )
    return samples


def decoding_samples(
    tokenizer, names: Sequence[str], per_task: int, length: int, seed: int = 0
) -> list[Sample]:
    """``per_task`` samples of each named task, each of about ``length`` context tokens."""
    check_decoding_tasks(names)
    haystack = paul_graham_essays() if "summary" in names else []
    samples: list[Sample] = []
    for name in names:
        for i in range(per_task):
            one = seed * 100003 + i
            samples += (
                copy_samples(tokenizer, length, 1, one)
                if name == "copy"
                else summary_samples(tokenizer, haystack, length, 1, one)
            )
    return samples
