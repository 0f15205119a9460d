"""keras_unet.tutorial: the notebooks' settings from defaults, fast mode and the
environment, and the line that says where they ran."""

import re

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
