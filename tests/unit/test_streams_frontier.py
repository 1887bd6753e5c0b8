"""The reprocessing frontier only ever rises and survives restarts of the worker."""

from __future__ import annotations

from pathlib import Path

import pytest

from bigbrotr.config import load_settings
from bigbrotr.errors import ConfigError
from streams.reprocess import load_frontier, save_frontier


def test_frontier_merges_by_maximum(tmp_path: Path) -> None:
    settings = load_settings(streams={"data_dir": str(tmp_path / "state")})
    assert load_frontier(settings) == {}
    save_frontier(settings, {0: 10, 1: 4})
    save_frontier(settings, {0: 7, 2: 1})
    assert load_frontier(settings) == {0: 10, 1: 4, 2: 1}


def test_damaged_frontier_is_a_clear_error(tmp_path: Path) -> None:
    settings = load_settings(streams={"data_dir": str(tmp_path)})
    (tmp_path / "frontier.json").write_text("{not json")
    with pytest.raises(ConfigError, match=r"frontier\.json"):
        load_frontier(settings)
