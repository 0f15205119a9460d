"""The package as a user gets it: the sdist and wheel that `make dist` builds, installed into
a clean virtual environment; and the project's one address (setup.cfg's url), which the
notebooks' Colab badges and install cells and the README follow.

The wheel is built without a download (``python -m build --no-isolation``, with the build
tools of the dev extra), and the clean environment reuses the dependencies already
installed here through a path file instead of installing them again.
"""

import email
import importlib.util
import json
import os
import re
import shutil
import site
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

import keras_unet

ROOT = Path(__file__).resolve().parents[1]
VERSION = keras_unet.__version__
WHEEL = f"keras_unet_paper-{VERSION}-py3-none-any.whl"
SDIST = f"keras_unet_paper-{VERSION}.tar.gz"
SYNC_HINT = "run `python tools/sync_url.py` to rewrite them from setup.cfg's url"


def _load_sync_url():
    spec = importlib.util.spec_from_file_location("sync_url", ROOT / "tools" / "sync_url.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sync_url = _load_sync_url()


def _package_files():
    """Every file the package is made of in the checkout (relative, POSIX), bytecode aside."""
    return sorted(path.relative_to(ROOT).as_posix()
                  for path in (ROOT / "keras_unet").rglob("*")
                  if path.is_file() and "__pycache__" not in path.parts
                  and path.suffix not in (".pyc", ".pyo"))


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    """The sdist and the wheel, built as `make dist` builds them (wheel from the sdist)."""
    if importlib.util.find_spec("build") is None:
        pytest.fail("the build front end is missing: pip install -e \".[dev]\" (make test does)")
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == sorted([SDIST, WHEEL])
    return out


# ------------------------------------------------------------------------------ contents


def test_wheel_holds_the_package_its_command_and_metadata_only(dist):
    with zipfile.ZipFile(dist / WHEEL) as wheel:
        names = wheel.namelist()
        info = f"keras_unet_paper-{VERSION}.dist-info"
        metadata = email.message_from_bytes(wheel.read(f"{info}/METADATA"))
        entry_points = wheel.read(f"{info}/entry_points.txt").decode()
    assert {name.split("/")[0] for name in names} == {"keras_unet", info}
    # every file of the package travels (a data file left out would be missing here)
    assert sorted(n for n in names if n.startswith("keras_unet/")) == _package_files()
    assert len(_package_files()) >= 15
    assert not [n for n in names if n.startswith(("tests/", "notebooks/", "benchmarks/"))]
    assert any(n.startswith(f"{info}/") and n.endswith("LICENSE") for n in names)  # MIT, as stated
    assert re.search(r"^keras-unet = keras_unet\.cli:main$", entry_points, re.M)
    assert metadata["Name"] == "keras-unet-paper"
    assert metadata["Version"] == VERSION
    assert metadata["Home-page"] == sync_url.project_url()
    requires = metadata.get_all("Requires-Dist")
    base = sorted(r.split(";")[0].split("<")[0].split(">")[0].split("=")[0].strip()
                  for r in requires if "extra ==" not in r)
    assert base == sorted(["tensorflow", "keras", "numpy", "scipy", "scikit-image", "pillow",
                           "tifffile", "matplotlib", "nibabel"])


def test_sdist_holds_what_the_wheel_is_built_from(dist):
    top = f"keras_unet_paper-{VERSION}"
    with tarfile.open(dist / SDIST) as sdist:
        names = {name[len(top) + 1:] for name in sdist.getnames() if name.startswith(top + "/")}
    assert {"README.md", "setup.cfg", "pyproject.toml", "PKG-INFO"} <= names
    assert set(_package_files()) <= names


# ----------------------------------------------------------------- a clean environment


def _clean_env(venv):
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV",
                          "PYTHONSAFEPATH", "PIP_REQUIRE_VIRTUALENV")}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", VIRTUAL_ENV=str(venv),
               PYTHONNOUSERSITE="1", KERAS_UNET_FAST="1", KERAS_BACKEND="tensorflow",
               TF_CPP_MIN_LOG_LEVEL="2")
    return env


def _run(command, cwd, env, timeout=300):
    result = subprocess.run([str(c) for c in command], cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, (f"{command} failed:\n{result.stdout[-3000:]}\n"
                                    f"{result.stderr[-3000:]}")
    return result.stdout


def test_wheel_installs_and_trains_in_a_clean_venv(dist, tmp_path):
    """pip install the wheel into a new venv and use it from outside the checkout."""
    venv, work = tmp_path / "venv", tmp_path / "work"
    work.mkdir()
    _run([sys.executable, "-m", "venv", "--without-pip", venv], tmp_path, None)
    python = venv / "bin" / "python"
    env = _clean_env(venv)
    purelib = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                        work, env).strip())
    # The dependencies installed here are reused, not installed again: a path file only
    # extends sys.path, so the path files in that folder (the checkout's editable install
    # among them) are not run, and the checkout's keras_unet must stay invisible.
    here = list(dict.fromkeys([*site.getsitepackages(), sysconfig.get_path("purelib"),
                               sysconfig.get_path("platlib")]))
    deps = purelib / "keras_unet_test_dependencies.pth"
    deps.write_text("".join(f"{path}\n" for path in here))
    seen = json.loads(_run([python, "-c", (
        "import importlib.util as u, json; "
        "print(json.dumps([u.find_spec('keras_unet') is None, u.find_spec('keras').origin]))")],
        work, env))
    assert seen[0], "the checkout's keras_unet is visible in the clean venv"
    assert any(seen[1].startswith(path) for path in here)

    # pip installs the wheel while nothing else is visible (so it has nothing to replace)
    deps.unlink()
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index",
          "--no-input", "--disable-pip-version-check", dist / WHEEL], work, env)
    deps.write_text("".join(f"{path}\n" for path in here))

    command = venv / "bin" / "keras-unet"
    assert command.is_file()
    assert _run([command, "--version"], work, env).strip() == f"keras-unet {VERSION}"
    trained = _run([command, "train", "--dataset", "synthetic", "--epochs", "1",
                    "--steps-per-epoch", "2", "--tile", "64", "--depth", "2", "--filters", "8",
                    "--batch-size", "2", "--output", work / "unet.keras"], work, env)
    assert (work / "unet.keras").is_file()
    params = int(re.search(r"([\d,]+) parameters", trained).group(1).replace(",", ""))

    loaded = json.loads(_run([python, "-c", (
        "import json, sys, keras, numpy as np, keras_unet\n"
        "model = keras.models.load_model('unet.keras')\n"
        "out = model(np.zeros((1, 64, 64, 1), 'float32'))\n"
        "print(json.dumps({'file': keras_unet.__file__, 'version': keras_unet.__version__,\n"
        "                  'params': model.count_params(), 'shape': list(out.shape),\n"
        "                  'path': sys.path, 'modules': sorted(sys.modules)}))")], work, env))
    assert Path(loaded["file"]).is_relative_to(venv), loaded["file"]
    assert loaded["version"] == VERSION
    assert loaded["params"] == params > 0
    assert loaded["shape"] == [1, 64, 64, 1]
    assert str(ROOT) not in loaded["path"]
    assert not [m for m in loaded["modules"] if m.startswith("__editable__")]


# ------------------------------------------------------------- the project's address


def test_setup_cfg_url_is_a_github_repository():
    assert sync_url.URL_RE.match(sync_url.project_url())
    assert "\nurl = " in (ROOT / "setup.cfg").read_text()


def test_notebooks_and_readme_follow_setup_cfg_url():
    problems = sync_url.check()
    assert not problems, f"{SYNC_HINT}:\n" + "\n".join(problems)


def test_each_notebook_badge_opens_its_own_file():
    url = sync_url.project_url()
    paths = sync_url.notebooks()
    assert len(paths) >= 5
    for path in paths:
        cells = json.loads(path.read_text())["cells"]
        first = "".join(cells[0]["source"])
        assert f"]({sync_url.colab_badge(url, path.name)})" in first, f"{path.name}: {SYNC_HINT}"
        installs = ["".join(c["source"]) for c in cells
                    if c["cell_type"] == "code" and "pip install" in "".join(c["source"])]
        assert len(installs) == 1 and f'"keras-unet-paper @ git+{url}"' in installs[0], (
            f"{path.name}: {SYNC_HINT}")


def test_readme_installs_from_the_repository_address():
    url = sync_url.project_url()
    readme = (ROOT / "README.md").read_text()
    assert f'pip install "keras-unet-paper @ git+{url}"' in readme, SYNC_HINT


def _copy_checkout(tmp_path):
    """The files sync_url reads and writes, copied (the checkout itself is never rewritten)."""
    files = [ROOT / "setup.cfg", *sync_url.notebooks(), *sync_url.markdown_files()]
    for path in files:
        target = tmp_path / path.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    return {path.relative_to(ROOT).as_posix(): path.read_text() for path in files}


def _set_url(root, url):
    setup = root / "setup.cfg"
    setup.write_text(re.sub(r"(?m)^url = .*$", f"url = {url}", setup.read_text()))


def test_sync_url_rewrites_the_addresses_and_nothing_else(tmp_path):
    before = _copy_checkout(tmp_path)
    old, new = sync_url.project_url(), "https://github.com/someone-else/unet-fork"
    assert "someone-else/unet-fork" not in "".join(before.values())
    _set_url(tmp_path, new)
    assert sync_url.check(tmp_path)  # the old address is everywhere

    changed = {path.relative_to(tmp_path).as_posix() for path in sync_url.sync(tmp_path)}
    assert sync_url.check(tmp_path) == []
    assert {"README.md", *(f"notebooks/{p.name}" for p in sync_url.notebooks())} <= changed
    after = {name: (tmp_path / name).read_text() for name in before}
    assert f'"keras-unet-paper @ git+{new}' in after["README.md"]
    for name, text in after.items():
        if name == "setup.cfg":
            continue
        # only the owner/repo of the address changed, byte for byte elsewhere
        restored = text.replace("someone-else/unet-fork", old.removeprefix("https://github.com/"))
        assert restored == before[name], name
    assert sync_url.sync(tmp_path) == []  # a second run has nothing to do


def test_check_names_a_badge_that_opens_another_notebook_and_sync_fixes_it(tmp_path):
    before = _copy_checkout(tmp_path)
    url = sync_url.project_url()
    target = tmp_path / "notebooks" / "02_isbi2012_paper.ipynb"
    wrong = before["notebooks/02_isbi2012_paper.ipynb"].replace(
        sync_url.colab_badge(url, "02_isbi2012_paper.ipynb"),
        sync_url.colab_badge(url, "01_quickstart.ipynb"))
    target.write_text(wrong)
    problems = sync_url.check(tmp_path)
    assert problems and all(p.startswith("notebooks/02_isbi2012_paper.ipynb: ") for p in problems)
    assert any("its Colab badge opens notebooks/01_quickstart.ipynb" in p for p in problems)
    assert [p.name for p in sync_url.sync(tmp_path)] == ["02_isbi2012_paper.ipynb"]
    assert target.read_text() == before["notebooks/02_isbi2012_paper.ipynb"]


def test_check_keeps_other_projects_and_reports_unknown_addresses(tmp_path):
    before = _copy_checkout(tmp_path)
    readme = tmp_path / "README.md"
    readme.write_text(before["README.md"] + "\nCompared with https://github.com/karolzak/keras-unet"
                      " and github.com/nobody-known/some-unet.\n")
    problems = sync_url.check(tmp_path)
    assert len(problems) == 1 and "'github.com/nobody-known/some-unet'" in problems[0]
    assert "OTHER_PROJECTS" in problems[0]
    assert sync_url.sync(tmp_path) == []  # neither is the project's: both left alone
