"""What a failing end-to-end test leaves behind in ``test-artifacts/<test>/``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"


def failed(request: pytest.FixtureRequest) -> bool:
    """Whether the test failed so far (the conftest hook keeps each phase's report)."""
    return any(
        getattr(getattr(request.node, f"report_{when}", None), "failed", False)
        for when in ("setup", "call")
    )


def artifact_dir(request: pytest.FixtureRequest) -> Path:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid.split("::", 1)[-1])
    path = ARTIFACTS / name
    path.mkdir(parents=True, exist_ok=True)
    return path
