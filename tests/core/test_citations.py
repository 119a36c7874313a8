"""Citations (rcstat.attribution.citations): the rule on known scores, and cite() on a tiny model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rcstat.attribution.attributor import Attributor
from rcstat.attribution.citations import Citation, Citations, CitedSentence, choose, cite
from rcstat.attribution.sources import Source
from rcstat.attribution.support import without
from rcstat.errors import RCStatError
from rcstat.options import DEFAULT_CITE_OVERLAP, DEFAULT_CITE_SUPPORT
from rcstat.render.citations_html import fragment


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
        assert s.citations[0] == Citation(int(np.argmax(scores)) + 1, float(scores.max()))  # numbered from 1
        assert s.support is None  # no attributor: not measured
    text = cited.text()
    assert text.startswith("Curie won twice. [") and "]" in text
    assert [src["text"] for src in cited.to_dict()["sources"]] == chunks
    assert cite(result, margin=1e6).sentences[0].citations == ()
    with pytest.raises(RCStatError, match="the response is empty"):
        cite(attributor.attribute(chunks, "q", " "))


def test_cut_spans_leave_the_rest() -> None:
    assert without("abcdefgh", [(5, 7), (1, 3)]) == "adeh"
    assert without("abc", []) == "abc"


def sample() -> Citations:
    sources = [Source(0, "Rome is in Italy.", 0, 17), Source(1, "Curie won.", 18, 28)]
    sentences = [
        CitedSentence("Curie won twice.", 0, 16, (Citation(2, 4.25),), 0.31),
        CitedSentence("Chefs cook.", 17, 28, (), 0.002, overlap=0.0),
    ]
    return Citations("Curie won twice. Chefs cook.", sentences, sources, 0.1, 0.05)


def test_one_numbering_and_scores_in_every_output() -> None:
    cited = sample()
    assert cited.text() == "Curie won twice. [2] Chefs cook."
    assert cited.text(scores=True) == (
        "Curie won twice. [2: 4.25] (support 0.310) Chefs cook. (support 0.002, overlap 0.00, unbacked)"
    )
    record = cited.to_dict()
    assert record["sentences"][0]["citations"] == [{"source": 2, "score": 4.25}]
    assert record["sentences"][1] == {
        "text": "Chefs cook.",
        "start": 17,
        "end": 28,
        "support": 0.002,
        "low_logprob": None,
        "overlap": 0.0,
        "citations": [],
    }
    assert [s["source"] for s in record["sources"]] == [1, 2]
    page = fragment(record)
    assert '<a href="#source-2" title="score 4.250">[2]</a>' in page and 'id="source-2"' in page
    assert (
        '<span class="unbacked" title="support 0.002 nats/token, overlap 0.00 — no source backs it">'
        "Chefs cook.</span>" in page
    )
    frame = cited.to_frame()
    assert frame["source"].tolist()[0] == 2 and frame["source_text"].tolist()[0] == "Curie won."
    assert frame["support"].tolist() == [0.31, 0.002] and frame["source"].isna().tolist() == [False, True]
    assert frame["overlap"].isna().tolist() == [True, False]


def test_support_gates_citations_on_a_tiny_model(tiny_checkpoint) -> None:
    from rcstat.models.loading import load_model

    model, tokenizer = load_model(tiny_checkpoint)
    attributor = Attributor(model, tokenizer)
    chunks = ["The Rhine rises in the Alps.", "Marie Curie won two Nobel Prizes.", "Honey never spoils."]
    result = attributor.attribute(chunks, "Tell me facts.", "Curie won twice. The Rhine is long.")
    open_gate = cite(result, 0.0, attributor=attributor, min_support=-1e9)
    assert all(np.isfinite(s.support) and s.citations for s in open_gate.sentences)
    assert [s.citations for s in open_gate.sentences] == [s.citations for s in cite(result, 0.0).sentences]
    shut = cite(result, 0.0, attributor=attributor, min_support=1e9)
    assert all(not s.citations for s in shut.sentences) and shut.to_dict()["min_support"] == 1e9
    assert [s.support for s in shut.sentences] == [s.support for s in open_gate.sentences]


def test_the_low_logprob_is_the_benchmarks_statistic_and_gates_on_request(tiny_checkpoint) -> None:
    """Each sentence's low log-probability is the support benchmark's ``lp_low3`` of its whole-context
    log-probabilities; ``min_logprob`` gates on it beside the support, and is off by default."""
    from rcstat.attribution.citations import candidates, sentence_scores
    from rcstat.attribution.support import token_logprobs
    from rcstat.evaluation.attribution.support_rules import statistics
    from rcstat.models.loading import load_model

    model, tokenizer = load_model(tiny_checkpoint)
    attributor = Attributor(model, tokenizer)
    chunks = ["The Rhine rises in the Alps.", "Marie Curie won two Nobel Prizes.", "Honey never spoils."]
    result = attributor.attribute(chunks, "Tell me facts.", "Curie won twice. The Rhine is long.")
    default = cite(result, 0.0, attributor=attributor, min_support=-1e9)
    sources = result.sources["chunk"]
    cuts = [
        (span, [(sources[i].start, sources[i].end) for i in candidates(scores, 0.0)])
        for span, scores in sentence_scores(result, "chunk")
    ]
    for s, rows in zip(default.sentences, token_logprobs(model, tokenizer, result, cuts), strict=True):
        reference = statistics((rows[0] - rows[1]).tolist(), None, rows[0].tolist())
        assert s.low_logprob == pytest.approx(reference["lp_low3"], abs=1e-5)
        assert s.support == pytest.approx(reference["mean"], abs=1e-5)
    lows = sorted(s.low_logprob for s in default.sentences)
    gated = cite(result, 0.0, attributor=attributor, min_support=-1e9, min_logprob=lows[-1])
    assert [bool(s.citations) for s in gated.sentences] == [
        s.low_logprob >= lows[-1] for s in gated.sentences
    ]
    assert default.to_dict()["min_logprob"] is None and gated.to_dict()["min_logprob"] == lows[-1]
    assert all(
        s["low_logprob"] == g.low_logprob
        for s, g in zip(gated.to_dict()["sentences"], gated.sentences, strict=True)
    )
    assert "low log-prob" in gated.text(scores=True) and "low log-prob" in fragment(gated.to_dict())


def test_the_one_call_api_on_a_tiny_model(tiny_checkpoint, tmp_path) -> None:
    from rcstat import cite as one_call

    cited = one_call(
        ["Rome is in Italy.", "Curie won."], "Facts?", "Curie won. Rome is in Italy.", tiny_checkpoint
    )
    assert [s.text for s in cited.sentences] == ["Curie won.", "Rome is in Italy."]
    assert all(s.support is not None for s in cited.sentences) and cited.query == "Facts?"
    page = cited.to_html(tmp_path / "cited.html").read_text()
    assert page.startswith("<!doctype html>") and "Curie won." in page
    assert cited._repr_html_().startswith("<style>") and len(cited.to_frame()) >= 2


@pytest.mark.realmodel
def test_curie_cites_the_backed_sentence_and_not_the_chef() -> None:
    from rcstat import cite as one_call

    context = (Path(__file__).parents[2] / "examples" / "curie.txt").read_text()
    response = (
        "She was a famous chef in Tokyo. She won the chemistry prize in 1911. The Eiffel Tower is in Paris."
    )
    cited = one_call(context, "Tell me about Marie Curie.", response)
    chef, prize, eiffel = cited.sentences
    assert [c.source for c in prize.citations] == [3] and not chef.citations and not eiffel.citations
    # the unbacked sentences have the least support, but the Eiffel sentence's (0.018) passes the
    # development-chosen threshold (0.01): the overlap gate stops it (the context holds Paris only)
    assert prize.support > 5 * max(chef.support, eiffel.support) and eiffel.support >= DEFAULT_CITE_SUPPORT
    assert chef.overlap == 0.0 and eiffel.overlap < DEFAULT_CITE_OVERLAP <= prize.overlap == 1.0


def test_the_overlap_counts_content_words_the_context_holds() -> None:
    from rcstat.attribution.support import content_words, overlap

    assert content_words("She won the Prize in 1911, at 5 p.m.") == {"prize", "1911", "5"}
    assert overlap("She won the Prize in 1911.", "the 1911 Nobel prize") == 1.0
    assert overlap("The Eiffel Tower is in Paris.", "She moved to Paris.") == pytest.approx(1 / 3)
    assert overlap("It is so.", "anything") == 1.0  # no content word: nothing to miss
    assert overlap("Straße und Zürich", "in zürich") == 0.5  # Unicode words, case-folded


def test_the_overlap_gates_citations_without_the_model(tiny_checkpoint) -> None:
    from rcstat.models.loading import load_model

    model, tokenizer = load_model(tiny_checkpoint)
    attributor = Attributor(model, tokenizer)
    chunks = ["The Rhine rises in the Alps.", "Marie Curie won two Nobel Prizes.", "Honey never spoils."]
    response = "Curie won two Nobel Prizes. Tokyo chefs cook ramen."
    result = attributor.attribute(chunks, "Tell me facts.", response)
    held, other = cite(result, 0.0).sentences
    assert held.overlap == 1.0 and held.citations and other.overlap == 0.0 and not other.citations
    assert cite(result, 0.0, min_overlap=None).sentences[1].citations  # the gate off: ranking alone
    assert cite(result, 0.0).to_dict()["min_overlap"] == DEFAULT_CITE_OVERLAP
    with pytest.raises(RCStatError, match="min_overlap must be in"):
        cite(result, 0.0, min_overlap=1.5)
