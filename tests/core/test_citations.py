"""Citations (rcstat.attribution.citations): the rule on known scores, and cite() on a tiny model."""

from __future__ import annotations

import numpy as np
import pytest

from rcstat.attribution.attributor import Attributor
from rcstat.attribution.citations import choose, cite
from rcstat.errors import RCStatError


@pytest.mark.parametrize(
    ("scores", "margin", "cited"),
    [
        ([3.0, 1.0, 1.2], 0.5, (0,)),  # one source leads
        ([3.0, 2.8, 1.0, 0.9, 1.1], 0.5, (0, 1)),  # two within the band of the best
        ([3.0, 2.8, 1.0, 0.9, 1.1], 0.1, (0,)),
        ([3.0, 2.8, 1.0], 0.5, ()),  # the median is the runner-up: the best does not lead it
        ([1.0, 1.05, 1.02], 0.5, ()),  # nothing stands out: no citation
        ([2.0, 1.0], 0.0, (0,)),
        ([1.0, 1.0, 1.0], 0.0, (0, 1, 2)),  # a zero margin cites every source tied with the best
    ],
)
def test_the_rule(scores, margin, cited) -> None:
    assert choose(np.array(scores), margin) == cited


@pytest.mark.realmodel
def test_cite_marks_every_sentence_and_refuses_an_empty_response(tiny_checkpoint) -> None:
    from rcstat.models.loading import load_model

    model, tokenizer = load_model(tiny_checkpoint)
    attributor = Attributor(model, tokenizer)
    chunks = ["The Rhine rises in the Alps.", "Marie Curie won two Nobel Prizes.", "Honey never spoils."]
    result = attributor.attribute(chunks, "Tell me facts.", "Curie won twice. The Rhine is long.")
    cited = cite(result, margin=0.0)
    assert [s.text for s in cited.sentences] == ["Curie won twice.", "The Rhine is long."]
    assert all(len(s.citations) >= 1 for s in cited.sentences)  # a zero margin always cites the best
    for s in cited.sentences:
        scores = result.attributions(s.start, s.end, "chunk").scores
        assert s.citations[0] == int(np.argmax(scores))
    text = cited.text()
    assert text.startswith("Curie won twice. [") and "]" in text
    assert [src["text"] for src in cited.to_dict()["sources"]] == chunks
    assert cite(result, margin=1e6).sentences[0].citations == ()
    with pytest.raises(RCStatError, match="the response is empty"):
        cite(attributor.attribute(chunks, "q", " "))
