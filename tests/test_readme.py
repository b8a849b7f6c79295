"""The README's Python quick start runs as written."""
from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_python_example_runs(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "the README has no Python example"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VLMXPLAIN_CACHE", str(tmp_path / "cache.sqlite"))
    namespace: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)  # noqa: S102 - our own documentation
    run = namespace["run"]
    assert (tmp_path / "runs" / "demo" / "run.sqlite").is_file()
    assert len(run.table) == 8 and namespace["cams"].maps.shape == (4, 7, 7)
    assert namespace["img"].size == namespace["data"][0].image.size
