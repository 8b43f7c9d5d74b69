"""Worlds for the data tests: the suite's tiny 32 px world and a 64 px one at default size."""

from __future__ import annotations

from pathlib import Path

import pytest

from ash_neuro.config import WorldConfig

WORLD64 = dict(n_train=300, n_val=20, n_test=20, n_compositional=40, workers=1)


@pytest.fixture(scope="session")
def world64(tmp_path_factory) -> Path:
    """A 64 px world (the default image size), large enough for answer-balance statistics."""
    from ash_neuro.data.generate import generate_world

    path = tmp_path_factory.mktemp("world64") / "world.h5"
    generate_world(WorldConfig(path=str(path), seed=3, **WORLD64))
    return path


@pytest.fixture(params=["tiny_world", "world64"])
def any_world(request) -> Path:
    """Each test that takes it runs on the 32 px and on the 64 px world."""
    return request.getfixturevalue(request.param)
