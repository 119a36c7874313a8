"""ContextCite (Cohen-Wang et al., 2024) as a baseline of the attribution benchmark.

It uses the PyPI package ``context-cite`` (optional extra ``rcstat[contextcite]``) as it is: its
``ContextCiter`` ablates random halves of the sources (``num_ablations`` forward passes of the
model per example, masks seeded 0…N−1), and fits its LASSO linear surrogate of the response
span's logit-probability per span. Two things are set from our side so that it sees exactly
what the other methods see:

- a partitioner whose sources are the benchmark's chunks, laid out as
  :func:`~rcstat.attribution.features.format_context` lays them out (kept chunks renumbered, as
  in the faithfulness ablation), in the same chat prompt;
- the response, teacher-forced: the citer's cached output is our prompt plus the given response,
  so it attributes that response rather than generating one.

The package downloads NLTK's ``punkt_tab`` when imported (its own sentence splitter, which we do
not use); offline that fails with a message, which goes to stderr here, and nothing else changes.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import warnings
from collections.abc import Sequence

import numpy as np

from rcstat.attribution.features import INSTRUCTION, format_context
from rcstat.errors import RCStatError

PROMPT_TEMPLATE = INSTRUCTION + "\n\nContext:\n{context}\n\nQuery: {query}"


def require_contextcite():
    """``context_cite`` and its base partitioner, or a clear error when the extra is missing."""
    try:
        with contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import context_cite
            import context_cite.utils
            from context_cite.context_partitioner import BaseContextPartitioner
    except ImportError as err:
        raise RCStatError(
            f"method contextcite needs the context-cite package ({err.name} is missing): "
            "pip install 'rcstat[contextcite]'"
        ) from None
    context_cite.utils.tqdm = lambda iterable, *a, **k: iterable  # no progress bar per example
    logging.getLogger("ContextCite").setLevel(logging.ERROR)
    return context_cite, BaseContextPartitioner


def contextcite_citer(
    model, tokenizer, chunks: Sequence[str], query: str, response: str, ablations: int = 32
):
    """A ``context_cite.ContextCiter`` over ``chunks`` with ``response`` teacher-forced.

    ``citer.get_attributions(start, end, verbose=False)`` scores every chunk for the response
    characters ``[start, end)``; the ablation passes run on its first call.
    """
    context_cite, base = require_contextcite()

    class ChunkPartitioner(base):
        def __init__(self, chunks: Sequence[str]) -> None:
            self.chunks = list(chunks)
            super().__init__(format_context(self.chunks)[0])

        @property
        def num_sources(self) -> int:
            return len(self.chunks)

        def split_context(self) -> None:
            pass

        def get_source(self, index: int) -> str:
            return self.chunks[index]

        def get_context(self, mask=None) -> str:
            kept = [
                c
                for c, keep in zip(
                    self.chunks, np.ones(len(self.chunks), bool) if mask is None else mask, strict=True
                )
                if keep
            ]
            return format_context(kept)[0] if kept else ""

    partitioner = ChunkPartitioner(chunks)
    citer = context_cite.ContextCiter(
        model,
        tokenizer,
        partitioner.context,
        query,
        num_ablations=ablations,
        prompt_template=PROMPT_TEMPLATE,
        partitioner=partitioner,
    )
    _, prompt = citer._get_prompt_ids(return_prompt=True)
    citer._cache["output"] = prompt + response  # teacher-forced: the citer never generates
    if citer.response != response:
        raise RCStatError("context-cite does not see the response as given (tokenisation at its start)")
    return citer


def contextcite_scores(citer, start: int, end: int) -> np.ndarray:
    """ContextCite's score of every chunk for the response characters ``[start, end)``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.cuda.amp.autocast on a CPU: deprecated and disabled
        return np.asarray(citer.get_attributions(start, end, verbose=False), dtype=float)
