"""funml_lib.claim: one switch decides what a sentence that does not hold does."""
from __future__ import annotations

import pytest

from funml_lib.claims import ClaimFailed, ClaimWarning, claim, claims_mode


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    monkeypatch.delenv("FUNML_CLAIMS", raising=False)
    monkeypatch.delenv("FUNML_GRADING", raising=False)


def test_default_is_warn_and_grading_is_skip(monkeypatch):
    assert claims_mode() == "warn"
    monkeypatch.setenv("FUNML_GRADING", "1")
    assert claims_mode() == "skip"
    monkeypatch.setenv("FUNML_CLAIMS", "strict")  # the explicit switch wins
    assert claims_mode() == "strict"


def test_unknown_mode_is_refused(monkeypatch):
    monkeypatch.setenv("FUNML_CLAIMS", "loud")
    with pytest.raises(ValueError, match="FUNML_CLAIMS must be one of strict, warn, skip, got 'loud'"):
        claims_mode()


def test_strict_raises_quoting_the_sentence_and_the_numbers(monkeypatch):
    monkeypatch.setenv("FUNML_CLAIMS", "strict")
    with pytest.raises(ClaimFailed) as err:
        claim(0.3 < 0.2, "the sparse model is worse", sparse=0.3, plain=0.2)
    assert str(err.value) == ("the text says 'the sparse model is worse', but this run measured "
                              "sparse = 0.3, plain = 0.2")


def test_holding_claims_print_their_numbers(monkeypatch, capsys):
    monkeypatch.setenv("FUNML_CLAIMS", "strict")
    assert claim(1 < 2, "one is less than two", one=1.0, two=2) is True
    assert capsys.readouterr().out == "claim holds: one is less than two [one = 1, two = 2]\n"


def test_warn_mode_warns_and_goes_on():
    with pytest.warns(ClaimWarning, match="the text says 'x', but this run measured a = 1"):
        assert claim(False, "x", a=1) is False


def test_skip_mode_says_so_and_checks_nothing(monkeypatch, capsys):
    monkeypatch.setenv("FUNML_CLAIMS", "skip")
    assert claim(False, "a run-dependent sentence") is True
    assert "claim not checked" in capsys.readouterr().out


@pytest.mark.parametrize("mode", ["skip", "warn", "strict"])
def test_exact_claims_are_checked_in_every_mode(monkeypatch, mode):
    monkeypatch.setenv("FUNML_CLAIMS", mode)
    assert claim(True, "an identity", exact=True)
    with pytest.raises(ClaimFailed, match="an identity"):
        claim(False, "an identity", exact=True)


def test_tensor_verdicts_and_empty_statements():
    import torch

    assert claim(torch.tensor(True), "a tensor verdict") is True
    with pytest.raises(ValueError, match="statement must be the sentence"):
        claim(True, "  ")
