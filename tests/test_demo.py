"""`python -m safeloss demo`: the naive runs go NaN, the safeloss runs stay
finite, on the backend under test."""

import numpy as np
import pytest

from safeloss import __main__ as cli
from safeloss import _demo
from tests.conftest import BACKEND


@pytest.mark.parametrize("story", ["classifier", "siamese"])
def test_story_naive_goes_nan_and_safeloss_stays_finite(story):
    result = _demo.run_story(story, steps=12, seed=0)
    naive, safe = result.runs
    assert naive.first_nan_step is not None
    if story == "siamese":
        # The infinite sqrt gradient reaches the weights on every backend;
        # Keras' NaN cross-entropy poisons the weights on TensorFlow only.
        assert not naive.weights_finite[-1]
    assert safe.first_nan_step is None
    assert all(safe.weights_finite) and np.all(np.isfinite(safe.losses))
    assert safe.label.startswith("safeloss.")


def test_cli_prints_the_summary_and_exits_0(capsys):
    code = cli.main(["demo", "--backend", BACKEND, "--steps", "10", "--story", "siamese"])
    out = capsys.readouterr().out
    assert code == 0
    assert f"backend: {BACKEND}" in out
    assert "| siamese | safeloss.TripletLoss(soft=True) | - |" in out
    assert "weights NOT FINITE" in out
