"""staged_folder: a folder appears whole or not at all, and a failed rewrite keeps the old one."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.io.atomic import staged_folder


def test_a_folder_replaces_the_old_one_only_when_complete(tmp_path: Path) -> None:
    target = tmp_path / "out"
    with staged_folder(target) as work:
        (work / "a.txt").write_text("first")
        assert not target.exists() and work.name == "out.partial"
    assert (target / "a.txt").read_text() == "first"
    with pytest.raises(RuntimeError, match="half way"), staged_folder(target) as work:
        (work / "a.txt").write_text("second")
        raise RuntimeError("half way")
    assert (target / "a.txt").read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    with staged_folder(target) as work:
        (work / "b.txt").write_text("third")
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]
