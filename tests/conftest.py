import os

import pytest
from hypothesis import HealthCheck, settings

import microseq

# CI: derandomised and without deadlines, so a slow machine cannot fail a run.
settings.register_profile(
    "ci", derandomize=True, deadline=None, max_examples=30, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("default", deadline=None, max_examples=30)
settings.register_profile("dev", deadline=None, max_examples=300)
default = "ci" if os.environ.get("CI") else "default"
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", default))


@pytest.fixture
def keep_default_rng():
    """For tests that reseed microseq's default generator: leave it as the next test finds it."""
    state = microseq.default_rng().bit_generator.state
    yield
    microseq.default_rng().bit_generator.state = state
