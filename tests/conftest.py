"""Shared test fixtures.

The real datasets are found through one setting, ``KERAS_UNET_DATA_DIR`` (a folder
holding ``isbi2012_em/``, ``drive/``, ...), by default ``../shared/data`` beside the
checkout, else in the package's download cache (see
:func:`keras_unet.tutorial.dataset_dir`). They are read from there, never copied into
the project, and never downloaded by a test.

A test whose dataset cannot be found is skipped with a reason that says how to get it,
and so is a test comparing a Keras backend (JAX, PyTorch) that is not installed. Under
``CI=true`` both are failures instead: in CI every test must run.
"""

import importlib.util
import os
from pathlib import Path

import pytest

from keras_unet import tutorial

#: The default folder of the real datasets: ../shared/data beside the checkout.
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
#: The Keras backends besides TensorFlow that some tests compare: module, name.
BACKENDS = {"jax": "JAX", "torch": "PyTorch"}


def in_ci():
    """True under ``CI=true`` (or 1, yes): missing data or backends fail, not skip."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def unavailable(reason):
    """Skip the test with ``reason``, or fail it under CI."""
    if in_ci():
        pytest.fail(f"CI=true: {reason}", pytrace=False)
    pytest.skip(reason)


class RealData:
    """The real datasets: ``shared_data / "drive"`` is DRIVE's folder wherever it was
    found (see the module's docstring), by the dataset's folder (``"isbi2012_em"``) or name
    (``"isbi2012"``); a dataset that is nowhere skips the test."""

    def __init__(self, default_root):
        self.default_root = default_root
        self._found = {}

    def __truediv__(self, name):
        if name not in self._found:  # looked up once: later tests may move the cache
            folder = tutorial.dataset_dir(name, self.default_root)
            help = tutorial.dataset_help(name, self.default_root) if folder is None else None
            self._found[name] = folder, help
        folder, help = self._found[name]
        if folder is None:
            unavailable(help)
        return folder


@pytest.fixture(scope="session")
def shared_data():
    """The real datasets: ``shared_data / "isbi2012_em"``, ``shared_data / "drive"``."""
    return RealData(SHARED_DATA)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "backend(name): the test runs Keras on backend name (jax, torch)")


def pytest_runtest_setup(item):
    """A test parametrized with ``backend`` (or marked ``backend(name)``) needs that
    backend installed."""
    names = [mark.args[0] for mark in item.iter_markers("backend")]
    callspec = getattr(item, "callspec", None)
    if callspec is not None and callspec.params.get("backend") in BACKENDS:
        names.append(callspec.params["backend"])
    for name in names:
        try:
            installed = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            installed = False
        if not installed:
            unavailable(f"the {BACKENDS[name]} backend is not installed: "
                        f'pip install -e ".[{name}]"')


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
