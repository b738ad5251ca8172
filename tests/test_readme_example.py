"""The README's example of the masking layer in a model of one's own runs as written and checks what it says."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECTION = "## Use the masking layer in your own model"


def _example() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert SECTION in text, f"README.md has no section {SECTION!r}"
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1, f"expected one python block in the section, found {len(blocks)}"
    return blocks[0]


def test_the_readme_example_runs_as_written(tmp_path):
    code = _example()
    assert len(code.strip().splitlines()) <= 25                          # short enough to read at a glance
    assert "BackdropMask" in code and ".backward()" in code and "assert" in code
    script = tmp_path / "example.py"
    script.write_text(code, encoding="utf-8")
    # a fresh interpreter in an empty folder: the block needs nothing the README does not show
    res = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert re.fullmatch(r"kept \d+ of 256 cells; their gradient x \d+\.\d\d, the others 0\n", res.stdout), res.stdout
