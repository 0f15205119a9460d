"""Shared test fixtures.

The real datasets live in ../shared/data beside the checkout (CI has it there too);
they are read from there, never copied into the project. A missing folder is an error,
not a skip: every test that needs real data must run.
"""

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data():
    """Path of ../shared/data (folders isbi2012_em/ and drive/)."""
    if not (SHARED_DATA / "isbi2012_em").is_dir():
        pytest.fail(f"the real datasets are missing: expected {SHARED_DATA} beside the checkout")
    return SHARED_DATA


def _toy_disks(n=8, size=32, seed=0):
    """Bright disks on a dark noisy background, and their binary masks (N, H, W, 1)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    images = rng.normal(0.2, 0.05, (n, size, size, 1)).astype("float32")
    masks = np.zeros((n, size, size, 1), "float32")
    for i in range(n):
        cy, cx = rng.integers(8, size - 8, 2)
        disk = (yy - cy) ** 2 + (xx - cx) ** 2 < 36
        masks[i, disk, 0] = 1
        images[i, disk, 0] += 0.6
    return images, masks


@pytest.fixture
def toy_disks():
    """``toy_disks(n=8, size=32, seed=0) -> (images, masks)``: an easy binary task."""
    return _toy_disks
