"""Press names: a close miss gets a "did you mean"; a press object is taken wherever a name is."""

from __future__ import annotations

import pytest

from rcstat.errors import RCStatError
from rcstat.presses.registry import make_decoding, make_press, parse_presses


@pytest.mark.parametrize(
    ("given", "meant"), [("snapkvv", "snapkv"), ("SnapKV", "snapkv"), ("RCStat", "rcstat")]
)
def test_a_close_miss_is_named(given, meant) -> None:
    with pytest.raises(RCStatError, match=rf"unknown press {given} \(did you mean {meant}\?\); choose from"):
        parse_presses([given])


def test_a_far_miss_gets_the_list_only() -> None:
    with pytest.raises(RCStatError) as info:
        parse_presses(["h2o"])
    assert "did you mean" not in str(info.value) and "choose from none, rcstat" in str(info.value)


def test_rcstat_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown press"):
        parse_presses(["nope"])


def test_a_press_object_stands_for_its_name() -> None:
    from kvpress import KnormPress, SnapKVPress

    from rcstat.kv.generation import Budget
    from rcstat.presses.threshold_press import ThresholdPress

    press = SnapKVPress(compression_ratio=0.25)
    assert make_press(press) is press
    thresholded = make_press(press, threshold=0.5)
    assert isinstance(thresholded, ThresholdPress) and thresholded.threshold == 0.5
    scorer = KnormPress()
    compression = make_decoding(scorer, Budget(tokens=32), interval=4)
    assert compression.scorer is scorer and compression.interval == 4
    assert type(make_decoding("knorm", Budget(tokens=32)).scorer) is KnormPress
