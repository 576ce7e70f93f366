"""--data-root parsing: a folder of datasets, NAME=PATH, and the errors."""
from __future__ import annotations

from pathlib import Path

import pytest

from vibench.errors import VibenchError
from vibench.runner.datasources import DataSources


def test_parse_folder_of_datasets(tmp_path: Path) -> None:
    (tmp_path / "SYSU-MM01").mkdir()
    (tmp_path / "RegDB").mkdir()
    ds = DataSources.parse([str(tmp_path)])
    assert ds.root("sysu") == (tmp_path / "SYSU-MM01").resolve()
    assert ds.root("regdb") == (tmp_path / "RegDB").resolve()
    assert ds.is_synthetic("llcm") and not ds.is_synthetic("sysu")
    assert ds.describe("sysu")["kind"] == "real"
    assert DataSources.from_dict(ds.to_dict()) == ds


def test_parse_name_equals_path(tmp_path: Path) -> None:
    ds = DataSources.parse([f"llcm={tmp_path}"])
    assert ds.root("llcm") == tmp_path.resolve()


def test_errors_name_the_value(tmp_path: Path) -> None:
    with pytest.raises(VibenchError, match="did you mean 'sysu'"):
        DataSources.parse([f"sysy={tmp_path}"])
    with pytest.raises(VibenchError, match="not a directory"):
        DataSources.parse([str(tmp_path / "missing")])
    with pytest.raises(VibenchError, match="expected sub-folders"):
        DataSources.parse([str(tmp_path)])
