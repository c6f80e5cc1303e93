"""The reward functions shipped for trainer=grpo: each scores by its documented rule, one reward per completion."""

import pytest

from autotrain_hydra import rewards

COMPLETIONS = [" 5 plus 4 is 9.", " I would rather not answer.", "", [{"role": "assistant", "content": "it is 12"}]]


def test_has_number():
    assert rewards.has_number(None, COMPLETIONS) == [1.0, 0.0, 0.0, 1.0]


def test_regex_match_search_and_full():
    assert rewards.regex_match(None, COMPLETIONS, pattern=r"is \d+") == [1.0, 0.0, 0.0, 1.0]
    assert rewards.regex_match(None, ["<a>x</a>", " <a>x</a> tail"], pattern="<a>.*</a>", full=True) == [1.0, 0.0]


def test_length_target_is_one_at_the_target_and_falls_off():
    out = rewards.length_target(None, ["x" * 10, "x" * 5, "x" * 20, ""], target=10)
    assert out == [1.0, 0.5, 0.5, 0.0]
    assert rewards.length_target(None, ["a b c d"], target=4, unit="words") == [1.0]
    with pytest.raises(ValueError, match="unit must be chars or words"):
        rewards.length_target(None, ["x"], unit="tokens")


def test_keywords_fraction_and_case():
    assert rewards.keywords(None, ["Paris is in France", "paris"], words=["paris", "france"]) == [1.0, 0.5]
    assert rewards.keywords(None, ["Paris"], words="paris", case_sensitive=True) == [0.0]
    with pytest.raises(ValueError, match="give the words"):
        rewards.keywords(None, ["x"])


def test_reference_match_modes_and_missing_references():
    comps = [" 5 plus 4 is 9.", "the answer: 9", "9", "no idea"]
    refs = ["9", "9", "9", None]
    assert rewards.reference_match(None, comps, answer=refs) == [1.0, 1.0, 1.0, None]
    assert rewards.reference_match(None, comps, answer=refs, mode="exact") == [0.0, 0.0, 1.0, None]
    assert rewards.reference_match(None, ["is 9.", "is 9.5", "-3"], solution=["9", "9", "-3"], column="solution",
                                   mode="number") == [1.0, 0.0, 1.0]
    with pytest.raises(KeyError, match="no column 'answer'"):
        rewards.reference_match(None, comps)
