"""The environment the tutorials run in under ``make test`` (nbval, fast mode, offline).

Each notebook's kernel is started with:
- ``KERAS_UNET_DATA_DIR``: the folder of the real datasets, found as the tests find it
  (``$KERAS_UNET_DATA_DIR``, else ../shared/data beside the checkout, else a complete
  download in the package's cache; see :func:`keras_unet.tutorial.dataset_dir`). A
  notebook that reads a dataset (``tutorial.dataset_dir("drive")``) which is nowhere to
  be found is skipped, with the reason saying how to get it; under ``CI=true`` it fails;
- ``KERAS_UNET_DATA``: an empty download cache, so the Oxford pets notebook runs the
  real download code ...
- ``KERAS_UNET_REGISTRY``: ... against small archives in the real dataset's layout,
  served from 127.0.0.1 (tests/archives.py) with their own checksums;
- ``KERAS_UNET_OUTPUT_DIR``: a temporary folder for what the notebooks write;
- ``SHELL=/bin/sh``: IPython runs ``!`` lines in ``$SHELL``, else ``/bin/sh`` (on Debian,
  dash: no ``set -o pipefail``). CI has no ``$SHELL``, so the tests use the plain shell too.
"""

import json
import os
import re
import sys
from pathlib import Path

import pytest

from keras_unet import tutorial

TESTS = Path(__file__).resolve().parents[1] / "tests"
#: The default folder of the real datasets: ../shared/data beside the checkout.
SHARED_DATA = TESTS.parents[1] / "shared" / "data"
#: A notebook needs each dataset it reads through ``tutorial.dataset_dir("<name>")``.
READS_DATASET = re.compile(r"""dataset_dir\(\s*["']([\w.-]+)["']""")
#: ... except those served here from 127.0.0.1, which the notebook downloads.
SERVED = {"oxford_pets"}
_MISSING = pytest.StashKey[str]()  # on a notebook's cells: why its data is missing
_environment = {}
_found = {}  # dataset name -> (folder or None, why not)


def in_ci():
    """True under ``CI=true`` (or 1, yes): a notebook without its data fails."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def datasets_read(path):
    """The names of the real datasets that the notebook at ``path`` reads (and that
    are not served here)."""
    cells = json.loads(Path(path).read_text())["cells"]
    source = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    return sorted(set(READS_DATASET.findall(source)) - SERVED)


def locate(name):
    """``(folder, None)`` of the real dataset ``name``, or ``(None, how to get it)``;
    looked up once, before the kernels' environment moves the download cache."""
    if name not in _found:
        folder = tutorial.dataset_dir(name, SHARED_DATA)
        _found[name] = folder, (tutorial.dataset_help(name, SHARED_DATA) if folder is None
                                else None)
    return _found[name]


def pytest_collection_modifyitems(config, items):
    """Notebooks whose data is missing: each cell is skipped (failed under CI) with the
    reason, and no kernel is started for them."""
    needs = {}
    for item in items:
        if item.path.suffix != ".ipynb":
            continue
        if item.path not in needs:
            needs[item.path] = [why for name in datasets_read(item.path)
                                for folder, why in [locate(name)] if folder is None]
        if needs[item.path]:
            item.stash[_MISSING] = "; ".join(needs[item.path])
            if not in_ci():
                item.add_marker(pytest.mark.skip(reason=item.stash[_MISSING]))


def _start(tmp_root):
    sys.path.insert(0, str(TESTS))
    from archives import LoopbackServer, serve_pets_mirror, tutorial_pets

    server = LoopbackServer()
    registry = serve_pets_mirror(server, tmp_root, *tutorial_pets())
    _environment.update(
        KERAS_UNET_FAST="1",
        KERAS_UNET_DATA=str(tmp_root / "cache"),
        KERAS_UNET_REGISTRY=str(registry),
        KERAS_UNET_OUTPUT_DIR=str(tmp_root / "outputs"),
        SHELL="/bin/sh",
    )
    root = tutorial.data_root(SHARED_DATA)
    if root is not None:
        _environment[tutorial.DATA_DIR_VARIABLE] = str(root)
    return server


def _data_environment(path):
    """``KERAS_UNET_DATA_DIR`` for the notebook at ``path``: where its datasets were
    found (a download in the cache is its folder's parent, like a data folder)."""
    roots = {str(locate(name)[0].parent) for name in datasets_read(path)}
    if len(roots) > 1:
        pytest.fail(f"{path.name} reads datasets found in different folders: "
                    f"{', '.join(sorted(roots))}; set {tutorial.DATA_DIR_VARIABLE} to one "
                    f"folder holding them all")
    return {tutorial.DATA_DIR_VARIABLE: roots.pop()} if roots else {}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    """Around the set-up of a notebook cell (where nbval starts the kernel), put the
    tutorial environment in os.environ, which the kernel inherits; then restore it."""
    if item.path.suffix != ".ipynb":
        return (yield)
    missing = item.stash.get(_MISSING, None)
    if missing is not None:
        if in_ci():
            pytest.fail(f"CI=true: {missing}", pytrace=False)
        return (yield)  # the skip mark stops it: no kernel, no environment
    if not _environment:
        tmp_root = item.config._tmp_path_factory.mktemp("notebooks")
        item.config._notebook_server = _start(tmp_root)
    environment = {**_environment, **_data_environment(item.path)}
    saved = {name: os.environ.get(name) for name in environment}
    os.environ.update(environment)
    try:
        return (yield)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def pytest_unconfigure(config):
    server = getattr(config, "_notebook_server", None)
    if server is not None:
        server.close()
