"""Every ```python block of README.md runs as written (imports and data included)."""

import contextlib
import io
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", README.read_text(), flags=re.S | re.M)


def test_the_readme_has_python_blocks():
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_block_runs(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # whatever a block writes lands here
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(BLOCKS[index], f"README.md python block {index + 1}", "exec"), {})
    first = BLOCKS[0]
    if index == 0:  # the first U-Net learns the synthetic cells
        assert "Dice" in first
        dice = float(re.search(r"Dice (\d\.\d+)", printed.getvalue()).group(1))
        assert dice > 0.8


def test_the_layout_section_states_the_package_size():
    """The README's layout section gives ``wc -l keras_unet/*.py``, within 5,900 lines."""
    package = sorted((README.parent / "keras_unet").glob("*.py"))
    lines = sum(len(path.read_bytes().splitlines()) for path in package)
    stated = re.search(r"`wc -l keras_unet/\*\.py`: ([\d,]+)", README.read_text())
    assert stated, "the layout section must state the package's line count"
    assert int(stated.group(1).replace(",", "")) == lines <= 5900
