"""A KV benchmark run as a user asks for it (``rcstat bench kv``): what to read, run and record.

Light to import (the command line builds its help from :class:`KVBench`); running imports the rest.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rcstat.distributed import HERE, Workers, require_ray
from rcstat.errors import RCStatError
from rcstat.evaluation.kv.samples import Sample, load_samples
from rcstat.evaluation.kv.tasks import check_tasks
from rcstat.evaluation.provenance import git_commit
from rcstat.io import Skipped
from rcstat.options import check_number
from rcstat.presses.registry import DEFAULT_RATIO, parse_presses


@dataclass(frozen=True)
class KVBench:
    """Presses × ratios over samples from a JSONL file (``data``) or built-in ``tasks``; the fields
    are the run's record, and their defaults the command line's."""

    presses: tuple[str, ...] = ("rcstat",)
    ratios: tuple[float, ...] = (DEFAULT_RATIO,)
    thresholds: tuple[tuple[str, tuple[float, ...]], ...] = ()
    query_aware: bool = False
    max_new_tokens: int = 64
    data: str | None = None
    tasks: tuple[str, ...] = ()
    per_task: int = 10
    lengths: tuple[int, ...] = (1024,)
    depths: tuple[float, ...] = (0.1, 0.3, 0.5, 0.7, 0.9)
    seed: int = 0
    qa_data: str | None = None
    limit: int | None = None
    strict: bool = False
    output: str | None = None
    workers: Workers = field(default=HERE, compare=False)
    command: Sequence[str] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        if self.workers.on_ray:
            require_ray()  # before the model loads: one line when the extra is missing
        parse_presses(self.presses, extra=("oracle",))
        if not self.ratios:
            raise RCStatError("give at least one compression ratio", option="compression_ratio")
        for ratio in self.ratios:
            check_number("compression_ratio", ratio, low=0, high=1, high_open=True)
        if (self.data is None) == (not self.tasks):
            raise RCStatError("give either a data file or built-in tasks", option="data")
        if self.tasks and list(self.tasks) != ["all"]:
            check_tasks(self.tasks)
        for length in self.lengths:
            check_number("lengths", length, low=1, integer=True)

    def read(self) -> tuple[list[Sample], list[Skipped]]:
        """The samples of ``data`` and the records skipped (before any model loads, so a bad file fails
        at once); nothing for built-in tasks."""
        return load_samples(self.data, self.limit, self.strict) if self.data else ([], [])

    def describe(self) -> str:
        if self.data:
            return str(self.data)
        qa = f", qa {self.qa_data}" if "qa" in self.tasks else ""
        lengths = ",".join(str(n) for n in self.lengths)
        return f"{','.join(self.tasks)} (per task {self.per_task}, lengths {lengths}, seed {self.seed}{qa})"

    def samples(self, tokenizer, read: list[Sample]) -> list[Sample]:
        """``read`` (from :meth:`read`), or the built-in tasks' samples for this tokenizer."""
        if self.data:
            return read
        from rcstat.evaluation.kv.tasks import TASKS, builtin_samples

        names = list(TASKS) if list(self.tasks) == ["all"] else list(self.tasks)
        found = builtin_samples(
            tokenizer, names, self.per_task, list(self.lengths), list(self.depths), self.seed, self.qa_data
        )
        return found[: self.limit] if self.limit else found


def run(
    model,
    tokenizer,
    model_name: str,
    bench: KVBench,
    read: tuple[list[Sample], list[Skipped]],
    progress: Callable[[int, str], Callable[[int, int], None]] | None = None,
) -> dict:
    """Run ``bench`` and return its record: the metadata and one row per press × ratio (``results``).

    ``progress(total, unit)`` makes the callback told ``(done, total)`` as samples finish. With
    ``bench.output``, its ``log.jsonl`` is resumed and appended to as samples finish.
    """
    import torch

    from rcstat.evaluation.fit import fitting, merged
    from rcstat.evaluation.kv.bench import Config, needed_tokens, run_kv_bench
    from rcstat.evaluation.kv.summary import summarise
    from rcstat.models.loading import model_limit

    samples = bench.samples(tokenizer, read[0])
    config = Config.create(
        bench.presses, bench.ratios, bench.query_aware, bench.max_new_tokens, dict(bench.thresholds)
    )
    samples, too_long = fitting(  # before any work: a sample too long for the model is skipped, reported
        samples,
        needed_tokens(model, tokenizer, samples, config),
        model_limit(model),
        bench.describe(),
        bench.strict,
        [s.record for s in samples],
    )
    log = Path(bench.output) / "log.jsonl" if bench.output else None
    update = progress(len(samples), "samples") if progress else None
    records = run_kv_bench(model, tokenizer, samples, config, log=log, progress=update, workers=bench.workers)
    meta = {
        "model": model_name,
        "data": bench.describe(),
        "commit": git_commit(),
        "query_aware": bench.query_aware,
        "command": "rcstat " + shlex.join(bench.command),
        "torch_threads": torch.get_num_threads(),
        "options": {k: v for k, v in asdict(bench).items() if k not in ("command", "workers")},
        "workers": bench.workers.describe(),
        "skipped": merged(read[1], too_long),
    }
    return {**meta, "results": summarise(config, records)}
