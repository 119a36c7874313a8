"""What a decoding-benchmark run compares (light to import: the command line builds its help from it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rcstat.errors import RCStatError
from rcstat.options import DEFAULT_INTERVAL, check_number, check_room
from rcstat.presses.registry import FULL_CACHE, PRESSES, decoding_names, parse_presses

DECODING_TASKS = ("copy", "summary")


def check_decoding_tasks(names: Sequence[str]) -> None:
    unknown = [n for n in names if n not in DECODING_TASKS]
    if unknown or not names:
        raise RCStatError(
            f"unknown task {', '.join(unknown) or '(none given)'}; choose from {', '.join(DECODING_TASKS)}",
            option="task",
        )


@dataclass(frozen=True)
class DecodingConfig:
    """Presses × budgets; a resumed run must have the same (its :meth:`record`). Every press runs at
    every budget: ``budgets`` (tokens per head) or else ``ratios``."""

    presses: tuple[str, ...]
    budgets: tuple[int, ...] = ()
    ratios: tuple[float, ...] = ()
    interval: int = DEFAULT_INTERVAL
    max_new_tokens: int = 512

    def __post_init__(self) -> None:
        parse_presses(self.presses)
        cannot = [n for n in self.presses if n != FULL_CACHE and PRESSES[n].scope is None]
        if cannot:
            raise RCStatError(
                f"press {cannot[0]} cannot compress while generating (it has no scorer to rerun); choose "
                f"from {', '.join(decoding_names())}",
                option="press",
            )
        if bool(self.budgets) == bool(self.ratios):
            raise RCStatError("give budgets (tokens) or compression ratios, one of the two", option="budget")
        check_number("interval", self.interval, low=1, integer=True)
        check_number("max_new_tokens", self.max_new_tokens, low=1, integer=True)
        for budget in self.budgets:
            check_number("budget", budget, low=1, integer=True)
            check_room(budget, self.interval)
        for ratio in self.ratios:
            check_number("compression_ratio", ratio, low=0, high=1, high_open=True)

    def budget_list(self) -> list:
        from rcstat.kv.generation import Budget

        return [Budget(tokens=b) for b in self.budgets] or [Budget(ratio=r) for r in self.ratios]

    @property
    def cells(self) -> list[tuple[str, object]]:
        """The full cache first, then every press at every budget."""
        return [(FULL_CACHE, None)] + [
            (name, budget) for name in self.presses if name != FULL_CACHE for budget in self.budget_list()
        ]

    def record(self) -> dict:
        keys = ("presses", "budgets", "ratios", "interval", "max_new_tokens")
        return {k: getattr(self, k) for k in keys}
