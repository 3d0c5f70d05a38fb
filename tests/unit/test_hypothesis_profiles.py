"""The property tests' two depths (tests/conftest.py): quick by default, thorough in CI."""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import settings

ROOT = Path(__file__).resolve().parents[2]


def test_the_fast_profile_still_draws_enough_fresh_examples_to_mean_something() -> None:
    fast = settings.get_profile("fast")
    assert fast.max_examples >= 25
    assert fast.derandomize is False
    assert fast.deadline is None


def test_the_ci_profile_looks_much_longer() -> None:
    ci = settings.get_profile("ci")
    assert ci.max_examples >= 300
    assert ci.derandomize is False
    assert ci.deadline is None


def test_the_environment_picks_the_profile_and_fast_is_the_default() -> None:
    chosen = settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "fast"))
    assert settings.default.max_examples == chosen.max_examples


def test_ci_runs_the_thorough_profile() -> None:
    assert 'export HYPOTHESIS_PROFILE="${HYPOTHESIS_PROFILE:-ci}"' in (ROOT / ".ci/run").read_text()
