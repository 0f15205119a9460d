"""keras_unet/cli.py: the installed `keras-unet` command, run as a user runs it."""

import os
import subprocess
import sys
from pathlib import Path

import keras_unet

# The console script installed beside this interpreter (by `pip install -e .`).
KERAS_UNET = str(Path(sys.executable).parent / "keras-unet")


def run(*args):
    env = dict(os.environ, KERAS_BACKEND="tensorflow")
    return subprocess.run([KERAS_UNET, *args], capture_output=True, text=True, env=env,
                          timeout=300)


def test_version():
    done = run("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"keras-unet {keras_unet.__version__}"


def test_info_lists_versions_backend_and_devices():
    done = run("info")
    assert done.returncode == 0, done.stderr
    rows = dict(line.split(None, 1) for line in done.stdout.strip().splitlines())
    assert rows["keras_unet"].startswith(keras_unet.__version__)
    assert rows["keras"].startswith("3.")
    assert rows["backend"].startswith("tensorflow")
    assert rows["tensorflow"].startswith("2.")
    assert "CPU:0" in rows["devices"]


def test_summary_defaults_to_the_paper():
    done = run("summary")
    assert done.returncode == 0, done.stderr
    assert "Total params: 31,030,658" in done.stdout
    assert "(None, 388, 388, 2)" in done.stdout
    assert "bottleneck_conv2" in done.stdout


def test_summary_bad_size_is_a_clear_error():
    done = run("summary", "--input-shape", "570,570,1")
    assert done.returncode == 2
    assert "Nearest sizes that fit: 556, 572" in done.stderr
    assert done.stdout == ""


def test_summary_bad_shape_text():
    done = run("summary", "--input-shape", "big")
    assert done.returncode == 2
    assert "'big' is not HEIGHT,WIDTH,CHANNELS" in done.stderr


def test_no_command_prints_help():
    done = run()
    assert done.returncode == 2
    assert "info" in done.stdout and "summary" in done.stdout
