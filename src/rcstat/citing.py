"""One call, as ContextCite users expect: ``from rcstat import cite``.

>>> cited = cite(["Paris is in France.", "Rome is in Italy."], "Where is Rome?", "Rome is in Italy.")
>>> cited.to_frame()          # one row per citation: sentence, support, source, score
>>> cited.to_html("cited.html"); cited   # a page; in a notebook, the cited response itself

Sits above the core and the render layer (it imports both; nothing in them imports it).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from rcstat.attribution.attributor import Attributor
from rcstat.attribution.citations import Citations
from rcstat.attribution.citations import cite as cite_result
from rcstat.io import write_atomic
from rcstat.models.loading import model_name
from rcstat.options import DEFAULT_CITE_MARGIN, DEFAULT_CITE_OVERLAP, DEFAULT_CITE_SUPPORT
from rcstat.render.citations_html import STYLE, fragment, render


class CitedResponse(Citations):
    """:class:`Citations` with the query and model they were made for, and their HTML views."""

    query: str = ""
    model: str = ""

    def to_html(self, path: str | Path) -> Path:
        """Write the self-contained page to ``path``; returns it."""
        path = Path(path)
        write_atomic(path, render({"model": self.model, **self.to_dict()}, self.query).encode())
        return path

    def _repr_html_(self) -> str:
        return f"<style>{STYLE}</style>{fragment(self.to_dict())}"


@lru_cache(maxsize=2)
def _attributor(name: str | None) -> Attributor:
    return Attributor.from_pretrained(name)


def cite(
    context_or_chunks: str | list[str],
    query: str,
    response: str | None = None,
    model: str | Attributor | None = None,
    *,
    margin: float = DEFAULT_CITE_MARGIN,
    min_support: float = DEFAULT_CITE_SUPPORT,
    min_logprob: float | None = None,
    min_overlap: float | None = DEFAULT_CITE_OVERLAP,
) -> CitedResponse:
    """Cite the sources of each sentence of ``response`` (generated greedily when ``None``): chunks when
    given a list, else the context's sentences; ``model``: a model id or path (the default model when
    ``None``, loaded once) or an :class:`Attributor`; ``min_support``, ``min_logprob`` and
    ``min_overlap``: the gates of :func:`rcstat.attribution.citations.cite`. Costs ``2 + sentences``
    forward passes."""
    attributor = model if isinstance(model, Attributor) else _attributor(model)
    result = attributor.attribute(context_or_chunks, query, response)
    cited = cite_result(
        result,
        margin,
        attributor=attributor,
        min_support=min_support,
        min_logprob=min_logprob,
        min_overlap=min_overlap,
    )
    out = CitedResponse(
        cited.response,
        cited.sentences,
        cited.sources,
        cited.margin,
        cited.min_support,
        cited.min_logprob,
        cited.min_overlap,
    )
    out.query, out.model = query, model_name(attributor.model)
    return out
