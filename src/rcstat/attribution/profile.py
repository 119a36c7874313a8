"""Head profiles: each head's mean expected RC over a calibration set, saved per model (JSON).

An attributor given a profile uses its top heads instead of ranking the heads per example
(docs/method.md §4, step 3).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch

from rcstat.attribution.features import build_task, capture
from rcstat.attribution.pooling import contextualization
from rcstat.attribution.scoring import Head
from rcstat.errors import RCStatError, warn
from rcstat.io import dumps, read_text, schema_reason, write_atomic
from rcstat.options import Estimator, check_choice


class Example(Protocol):
    """What calibration reads of an example: its chunks, query and response."""

    chunks: Sequence[str]
    query: str
    response: str


@dataclass(frozen=True)
class HeadProfile:
    """Every head's mean expected RC over a calibration set, saved per model (JSON)."""

    model: str
    estimator: str
    head_rc: list[list[float]]  # (layers, heads)
    examples: int

    def top(self, k: int) -> list[Head]:
        return select_heads(torch.tensor(self.head_rc), k)

    def save(self, path: str | Path) -> None:
        write_atomic(path, (dumps(self.__dict__, indent=1) + "\n").encode())

    @classmethod
    def load(cls, path: str | Path) -> HeadProfile:
        """A saved profile, checked: its fields' types, finite values, a full layers × heads table."""
        from pydantic import ValidationError

        from rcstat.schemas import Profile

        text = read_text(path)  # missing, empty, binary, non-UTF-8: one clear error
        try:
            data = Profile.model_validate(json.loads(text))
        except json.JSONDecodeError as err:
            raise RCStatError(f"{path}: not a head profile (malformed JSON: {err.msg})") from None
        except ValidationError as err:
            raise RCStatError(f"{path}: not a head profile ({schema_reason(err)})") from None
        rows = {len(row) for row in data.head_rc}
        if not data.head_rc or len(rows) != 1 or 0 in rows:
            raise RCStatError(f"{path}: not a head profile (`head_rc` must be a full layers × heads table)")
        check_choice("estimator", data.estimator, Estimator)
        if data.examples < 1:
            raise RCStatError(f"{path}: not a head profile (`examples` must be at least 1)")
        return cls(
            data.model, data.estimator, [[float(v) for v in row] for row in data.head_rc], data.examples
        )

    def check(self, model, name: str) -> None:
        """Refuse to rank the heads of another model: its name and its layers × heads must match."""
        shape = (model.config.num_hidden_layers, model.config.num_attention_heads)
        mine = (len(self.head_rc), len(self.head_rc[0]))
        if mine != shape:
            raise RCStatError(
                f"the head profile is {mine[0]} layers × {mine[1]} heads; {name} has {shape[0]} × {shape[1]}",
                option="profile",
            )
        if self.model != name:
            raise RCStatError(
                f"the head profile was calibrated on {self.model}, not {name}", option="profile"
            )


def check_top_k(model, top_k: int) -> None:
    """Warn when more heads are asked for than the model has (all of them are then used)."""
    heads = model.config.num_hidden_layers * model.config.num_attention_heads
    if top_k > heads:
        warn(f"top_k is {top_k} but the model has {heads} heads: all of them are used")


def select_heads(head_rc: torch.Tensor, k: int, least: bool = False) -> list[Head]:
    """The ``k`` heads with the highest (or lowest) expected RC, as ``(layer, head)``."""
    heads = head_rc.shape[1]
    order = torch.argsort(head_rc.reshape(-1), descending=not least)[:k]
    return [(int(i) // heads, int(i) % heads) for i in order]


def calibrate(
    model,
    tokenizer,
    examples: Sequence[Example],
    model_name: str,
    estimator: str,
    progress: Callable[[int, int], None] | None = None,
) -> HeadProfile:
    """A head profile: each head's expected RC of the context against the response, averaged over
    ``examples``, one pass each (``Attributor.calibrate`` calls it with its scoring's estimator)."""
    total = None
    for done, example in enumerate(examples, start=1):
        task = build_task(model, tokenizer, list(example.chunks), example.query, example.response)
        head_rc = capture(model, task, estimator, heads=[]).head_rc
        total = head_rc if total is None else total + head_rc
        if progress:
            progress(done, len(examples))
    if total is None:
        raise RCStatError("calibration needs at least one example")
    return HeadProfile(model_name, estimator, (total / len(examples)).tolist(), len(examples))


def head_samples(
    model, task, estimator: str, head: Head | None = None
) -> tuple[Head, torch.Tensor, torch.Tensor, float]:
    """``(head, x, y, E[RC])`` of one head over the whole response (the task's top head by E[RC]
    when ``head`` is None): ``x`` = ``X_s(p, g)``, ``y`` = ``Y_s(g, g)`` — the paper's Figure 1."""
    if head is None:
        head = select_heads(capture(model, task, estimator, heads=[]).head_rc, 1)[0]
    layer, index = head
    layers, heads = model.config.num_hidden_layers, model.config.num_attention_heads
    if not (0 <= layer < layers and 0 <= index < heads):
        raise RCStatError(
            f"no head {layer}:{index}: the model has {layers} layers of {heads} heads", option="head"
        )
    features = capture(model, task, estimator, heads=[head])
    x, y = contextualization(features, head)
    return head, x, y, float(features.head_rc[layer, index])
