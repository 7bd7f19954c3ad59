import os

from hypothesis import HealthCheck, settings

# CI: derandomised and without deadlines, so a slow machine cannot fail a run.
settings.register_profile(
    "ci", derandomize=True, deadline=None, max_examples=30, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("default", deadline=None, max_examples=30)
settings.register_profile("dev", deadline=None, max_examples=300)
default = "ci" if os.environ.get("CI") else "default"
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", default))
