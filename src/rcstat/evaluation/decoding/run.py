"""A decoding benchmark run as a user asks for it (``rcstat bench decoding``): what to read, run and record.

Light to import (the command line builds its help from :class:`DecodingBench`); running imports the rest.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rcstat.distributed import HERE, Workers, require_ray
from rcstat.errors import RCStatError
from rcstat.evaluation.decoding.config import DecodingConfig, check_decoding_tasks
from rcstat.evaluation.kv.samples import OpenRecord, Sample, load_samples
from rcstat.evaluation.provenance import git_commit
from rcstat.io import Skipped
from rcstat.options import DEFAULT_INTERVAL, check_number


@dataclass(frozen=True)
class DecodingBench:
    """Presses × budgets while generating, over samples from a JSONL file (``data``: rows with
    ``context`` and ``question``, ``answers`` optional) or built-in ``tasks``; the fields are the
    run's record, and their defaults the command line's."""

    presses: tuple[str, ...] = (
        "rcstat",
        "rcstat-uniform",
        "knorm",
        "streaming_llm",
        "expected_attention",
        "tova",
        "keydiff",
    )
    budgets: tuple[int, ...] = (64, 128, 256)
    ratios: tuple[float, ...] = ()
    interval: int = DEFAULT_INTERVAL
    max_new_tokens: int = 512
    data: str | None = None
    tasks: tuple[str, ...] = ()
    per_task: int = 10
    length: int = 400
    seed: int = 0
    limit: int | None = None
    strict: bool = False
    timing_tokens: int = 0
    output: str | None = None
    workers: Workers = field(default=HERE, compare=False)
    command: Sequence[str] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        if self.workers.on_ray:
            require_ray()
        if (self.data is None) == (not self.tasks):
            raise RCStatError("give either a data file or built-in tasks", option="data")
        if self.tasks:
            check_decoding_tasks(self.tasks)
        for name, value in (("length", self.length), ("per_task", self.per_task)):
            check_number(name, value, low=1, integer=True)
        check_number("timing_tokens", self.timing_tokens, low=0, integer=True)
        self.config()  # presses, budgets and interval checked before the model loads

    def config(self) -> DecodingConfig:
        budgets = () if self.ratios else self.budgets
        return DecodingConfig(self.presses, budgets, self.ratios, self.interval, self.max_new_tokens)

    def read(self) -> tuple[list[Sample], list[Skipped]]:
        """The samples of ``data`` and the records skipped; nothing for built-in tasks."""
        return load_samples(self.data, self.limit, self.strict, OpenRecord) if self.data else ([], [])

    def samples(self, tokenizer, read: list[Sample]) -> list[Sample]:
        if self.data:
            return read
        from rcstat.evaluation.decoding.tasks import decoding_samples

        found = decoding_samples(tokenizer, self.tasks, self.per_task, self.length, self.seed)
        return found[: self.limit] if self.limit else found

    def describe(self) -> str:
        if self.data:
            return str(self.data)
        return (
            f"{','.join(self.tasks)} (per task {self.per_task}, about {self.length} tokens, seed {self.seed})"
        )


def run(
    model,
    tokenizer,
    model_name: str,
    bench: DecodingBench,
    read: tuple[list[Sample], list[Skipped]],
    progress: Callable[[int, str], Callable[[int, int], None]] | None = None,
) -> dict:
    """Run ``bench``: its metadata, one row per press × budget (``results``) and, with
    ``timing_tokens``, the time per token of each configuration alone on the first sample."""
    import torch

    from rcstat.evaluation.decoding.bench import run_decoding_bench
    from rcstat.evaluation.decoding.summary import summarise
    from rcstat.evaluation.decoding.timing import time_per_token
    from rcstat.evaluation.fit import fitting, merged
    from rcstat.kv.generate import prompt_ids
    from rcstat.models.loading import model_limit

    samples = bench.samples(tokenizer, read[0])
    if not samples:
        raise RCStatError("no sample to run", option="data")
    config = bench.config()
    # before any work: a sample too long for the model is skipped and reported; a timing that
    # would run past the model's length is refused
    limit = model_limit(model)
    prompts = [int(prompt_ids(model, tokenizer, s.context, s.question).shape[0]) for s in samples]
    kept, too_long = fitting(
        list(zip(samples, prompts, strict=True)),
        [n + config.max_new_tokens for n in prompts],
        limit,
        bench.describe(),
        bench.strict,
        [s.record for s in samples],
    )
    samples = [sample for sample, _ in kept]
    if bench.timing_tokens and limit and kept[0][1] + bench.timing_tokens > limit:
        raise RCStatError(
            f"timing {bench.timing_tokens} tokens after the first sample's prompt ({kept[0][1]} tokens) "
            f"needs {kept[0][1] + bench.timing_tokens} positions; the model allows {limit}",
            option="timing_tokens",
        )
    log = Path(bench.output) / "log.jsonl" if bench.output else None
    update = progress(len(samples), "samples") if progress else None
    records = run_decoding_bench(
        model, tokenizer, samples, config, log=log, progress=update, workers=bench.workers
    )
    timing = []
    if bench.timing_tokens:
        ids = prompt_ids(model, tokenizer, samples[0].context, samples[0].question)
        timing = time_per_token(model, ids, config.cells, config.interval, bench.timing_tokens)
    first = records[0]["results"] if records else {}
    return {
        "model": model_name,
        "data": bench.describe(),
        "commit": git_commit(),
        "command": "rcstat " + shlex.join(bench.command),
        "torch_threads": torch.get_num_threads(),
        "options": {k: v for k, v in asdict(bench).items() if k not in ("command", "workers")},
        "workers": bench.workers.describe(),
        "skipped": merged(read[1], too_long),
        "results": summarise(config, records),
        "timing": timing,
        "memory_first_sample": {
            key: {"held_bytes": cell["held_bytes"], "full_bytes": cell["full_bytes"]}
            for key, cell in first.items()
        },
    }
