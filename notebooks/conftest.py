"""The environment the tutorials run in under ``make test`` (nbval, fast mode, offline).

Each notebook's kernel is started with:
- ``KERAS_UNET_ISBI_DIR`` and ``KERAS_UNET_DRIVE_DIR``: the real data in ../shared/data;
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
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1] / "tests"
SHARED_DATA = TESTS.parents[1] / "shared" / "data"
_environment = {}


def _start(tmp_root):
    sys.path.insert(0, str(TESTS))
    from archives import LoopbackServer, make_pets_archives, tutorial_pets

    served = tmp_root / "served"
    checksums = make_pets_archives(served, *tutorial_pets())
    server = LoopbackServer()
    for name in checksums:
        server.files[f"pets/{name}"] = (served / name).read_bytes()
    files = [{"url": name, "sha256": sha, "filename": name, "kind": "tar"}
             for name, sha in checksums.items()]
    registry = tmp_root / "registry.json"
    registry.write_text(json.dumps({"oxford_pets": {"base_url": server.url + "pets/",
                                                    "files": files}}))
    if not (SHARED_DATA / "isbi2012_em").is_dir():
        pytest.fail(f"the real datasets are missing: expected {SHARED_DATA} beside the checkout")
    _environment.update(
        KERAS_UNET_FAST="1",
        KERAS_UNET_ISBI_DIR=str(SHARED_DATA / "isbi2012_em"),
        KERAS_UNET_DRIVE_DIR=str(SHARED_DATA / "drive"),
        KERAS_UNET_DATA=str(tmp_root / "cache"),
        KERAS_UNET_REGISTRY=str(registry),
        KERAS_UNET_OUTPUT_DIR=str(tmp_root / "outputs"),
        SHELL="/bin/sh",
    )
    return server


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    """Around the set-up of a notebook cell (where nbval starts the kernel), put the
    tutorial environment in os.environ, which the kernel inherits; then restore it."""
    if item.path.suffix != ".ipynb":
        yield
        return
    if not _environment:
        tmp_root = item.config._tmp_path_factory.mktemp("notebooks")
        item.config._notebook_server = _start(tmp_root)
    saved = {name: os.environ.get(name) for name in _environment}
    os.environ.update(_environment)
    try:
        yield
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
