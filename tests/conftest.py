"""Shared fixtures: tests never see the developer's own config or state."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def no_discovered_config(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("ONCALL_TUI_CONFIG", raising=False)
    monkeypatch.setenv("TZ", "UTC")
    return


@pytest.fixture
def tmp_log(tmp_path: Path) -> Path:
    return tmp_path / "log.db"
