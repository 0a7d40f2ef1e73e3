"""Shared pytest settings: hypothesis profile and quiet, deterministic runs."""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "book",
    deadline=None,
    max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", 100)),
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
settings.load_profile("book")
