"""keras_unet.tutorial: the notebooks' settings from defaults, fast mode and the
environment, and the line that says where they ran."""

import re
from pathlib import Path

import pytest

from keras_unet import tutorial


def _settings(capsys, **kwargs):
    run = tutorial.settings(**kwargs)
    return run, capsys.readouterr().out.splitlines()


def test_defaults_fast_values_and_environment(monkeypatch, capsys):
    for name in ("EPOCHS", "TILE", "LR", "AUGMENT", "DATA_DIR", "FAST"):
        monkeypatch.delenv(f"KERAS_UNET_{name}", raising=False)
    defaults = dict(epochs=20, tile=256, lr=1e-3, augment=True, data_dir=None)
    run, table = _settings(capsys, fast={"epochs": 1, "tile": 64}, **defaults)
    assert (run.epochs, run.tile, run.lr, run.augment, run.data_dir) == (20, 256, 1e-3, True, None)
    assert table[0].split() == ["parameter", "value", "from"]
    assert table[1].split() == ["epochs", "20", "default"]

    monkeypatch.setenv("KERAS_UNET_FAST", "1")
    run, _ = _settings(capsys, fast={"epochs": 1, "tile": 64}, **defaults)
    assert (run.epochs, run.tile, run.lr) == (1, 64, 1e-3)

    # an explicit variable wins over the fast value, typed like the default
    monkeypatch.setenv("KERAS_UNET_TILE", "128")
    monkeypatch.setenv("KERAS_UNET_LR", "0.01")
    monkeypatch.setenv("KERAS_UNET_AUGMENT", "no")
    monkeypatch.setenv("KERAS_UNET_DATA_DIR", "/data/isbi")
    run, table = _settings(capsys, fast={"epochs": 1, "tile": 64}, **defaults)
    assert (run.epochs, run.tile, run.lr, run.augment, run.data_dir) == (1, 128, 0.01, False,
                                                                        "/data/isbi")
    assert table[1].split() == ["epochs", "1", "fast", "mode"]
    assert table[2].split() == ["tile", "128", "KERAS_UNET_TILE"]
    assert table[5].split() == ["data_dir", "'/data/isbi'", "KERAS_UNET_DATA_DIR"]
    monkeypatch.setenv("KERAS_UNET_DATA_DIR", "none")
    assert _settings(capsys, data_dir="x")[0].data_dir is None


@pytest.mark.parametrize("name, text, message", [
    ("EPOCHS", "ten", "KERAS_UNET_EPOCHS must be an integer; got 'ten'"),
    ("EPOCHS", "2.5", "KERAS_UNET_EPOCHS must be an integer; got '2.5'"),
    ("LR", "fast", "KERAS_UNET_LR must be a number; got 'fast'"),
    ("AUGMENT", "maybe", "KERAS_UNET_AUGMENT must be 1/0, true/false or yes/no; got 'maybe'"),
])
def test_bad_environment_names_the_variable(monkeypatch, name, text, message):
    monkeypatch.setenv(f"KERAS_UNET_{name}", text)
    with pytest.raises(ValueError, match=re.escape(message)):
        tutorial.settings(epochs=20, lr=1e-3, augment=True)


def test_fast_names_need_a_default():
    with pytest.raises(ValueError, match="fast names parameters without a default: steps"):
        tutorial.settings(epochs=20, fast={"steps": 2})


def test_report_says_time_and_machine(monkeypatch, capsys):
    monkeypatch.delenv("KERAS_UNET_FAST", raising=False)
    run, _ = _settings(capsys, epochs=1)
    run.report()
    line = capsys.readouterr().out
    assert re.fullmatch(r"Ran in \d+\.\d min with default settings on a \d+-core .+ CPU, no GPU; "
                        r"Keras 3\.\d+\.\d+, backend tensorflow\.\n", line), line


# ------------------------------------------------------------------- real datasets


def test_dataset_dir_variable_then_default_then_cache(tmp_path, monkeypatch):
    variable, default, cache = tmp_path / "variable", tmp_path / "default", tmp_path / "cache"
    for root in (variable, default):
        (root / "drive").mkdir(parents=True)
    monkeypatch.setenv("KERAS_UNET_DATA", str(cache))
    monkeypatch.delenv("KERAS_UNET_DATA_DIR", raising=False)
    assert tutorial.data_root() is None
    assert tutorial.dataset_dir("drive") is None  # nothing anywhere: the loader decides
    assert tutorial.dataset_dir("drive", default) == default / "drive"
    monkeypatch.setenv("KERAS_UNET_DATA_DIR", str(variable))
    assert tutorial.data_root(default) == variable
    assert tutorial.dataset_dir("drive", default) == variable / "drive"  # the variable wins
    # a dataset the variable's folder lacks: only a complete download in the cache counts
    assert tutorial.dataset_dir("isbi2012", default) is None
    (cache / "isbi2012_em").mkdir(parents=True)  # the dataset isbi2012's folder
    assert tutorial.dataset_dir("isbi2012", default) is None  # half done
    (cache / "isbi2012_em" / ".complete").touch()
    assert tutorial.dataset_dir("isbi2012", default) == cache / "isbi2012_em"
    assert tutorial.dataset_dir("isbi2012_em", default) == cache / "isbi2012_em"  # its folder
    (variable / "isbi2012_em").mkdir()
    assert tutorial.dataset_dir("isbi2012", default) == variable / "isbi2012_em"
    monkeypatch.setenv("KERAS_UNET_DATA_DIR", "~/real")
    assert tutorial.data_root() == Path.home() / "real"


def test_dataset_help_says_where_it_looked_and_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_UNET_DATA", str(tmp_path / "cache"))
    monkeypatch.setenv("KERAS_UNET_DATA_DIR", "/nonexistent")
    assert tutorial.dataset_help("drive") == (
        "DRIVE not found in /nonexistent/drive: set KERAS_UNET_DATA_DIR to a folder holding "
        "drive/ (DRIVE is handed out after registration at https://drive.grand-challenge.org;"
        " unpack it as data/README.md describes)")
    monkeypatch.delenv("KERAS_UNET_DATA_DIR")
    expected = (
        f"ISBI 2012 not found in the cache {tmp_path / 'cache' / 'isbi2012_em'}: set "
        "KERAS_UNET_DATA_DIR to a folder holding isbi2012_em/, or download it once (about "
        "20 MB) into the package's cache: python -c \"from keras_unet import datasets; "
        "datasets.load_isbi2012()\"")
    assert tutorial.dataset_help("isbi2012") == tutorial.dataset_help("isbi2012_em") == expected
    assert tutorial.dataset_help("tumour_volumes") == (
        f"tumour_volumes not found in the cache {tmp_path / 'cache' / 'tumour_volumes'}: set "
        "KERAS_UNET_DATA_DIR to a folder holding tumour_volumes/, or download it once (34 MB) "
        "into the package's cache: python -c \"from keras_unet import datasets; "
        "datasets.load_tumour_volumes()\"")
    assert tutorial.dataset_help("lung_cxr") == (  # no download, so not in the cache either
        "lung_cxr not found (KERAS_UNET_DATA_DIR is not set): set KERAS_UNET_DATA_DIR to a "
        "folder holding lung_cxr/")


def test_shown_path_names_no_folder_of_this_machine(tmp_path, monkeypatch):
    work = tmp_path / "work"
    (work / "main" / "notebooks").mkdir(parents=True)
    monkeypatch.chdir(work / "main" / "notebooks")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert tutorial.shown_path(str(work / "main" / "notebooks" / "outputs")) == "outputs"
    assert tutorial.shown_path(str(work / "shared" / "data")) == "../../shared/data"
    assert tutorial.shown_path(work / "main") == ".."
    assert tutorial.shown_path("outputs") == "outputs"
    assert tutorial.shown_path(None) is None and tutorial.shown_path(3) == 3
    monkeypatch.chdir("/")  # nothing in common with the current folder: ~ for home
    assert tutorial.shown_path(str(tmp_path / "home" / "data" / "drive")) == "~/data/drive"
    assert tutorial.shown_path("/srv/data") == "/srv/data"


def test_settings_table_shows_short_paths(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KERAS_UNET_OUTPUT_DIR", str(tmp_path / "runs" / "a"))
    run, table = _settings(capsys, output_dir="outputs")
    assert run.output_dir == str(tmp_path / "runs" / "a")  # the value itself is untouched
    assert table[1].split() == ["output_dir", "'runs/a'", "KERAS_UNET_OUTPUT_DIR"]


def test_warnings_in_a_notebook_kernel_name_no_file(monkeypatch, capsys):
    import sys
    import warnings

    monkeypatch.setattr(warnings, "formatwarning", warnings.formatwarning)  # restored after
    monkeypatch.setitem(sys.modules, "ipykernel", sys)  # as if in a Jupyter kernel
    _settings(capsys, epochs=1)
    text = warnings.formatwarning("skipped 1 image", UserWarning, "/work/x/datasets.py", 12)
    assert text == "UserWarning: skipped 1 image\n"
