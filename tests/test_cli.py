"""keras_unet/cli.py: the installed `keras-unet` command, run as a user runs it."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

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


# ------------------------------------------------------- train / predict / evaluate


@pytest.fixture(scope="module")
def cell_folders(tmp_path_factory):
    """A user's folders: 8 synthetic cell images and their 0/255 masks, as PNG."""
    import numpy as np
    from PIL import Image

    from keras_unet.datasets import synthetic_cells

    root = tmp_path_factory.mktemp("cells")
    images, masks, _ = synthetic_cells(8, size=96, seed=3)
    for folder in ("images", "masks"):
        (root / folder).mkdir()
    for i, (image, mask) in enumerate(zip(images, masks)):
        Image.fromarray((image[..., 0] * 255).astype(np.uint8)).save(root / "images" / f"c{i}.png")
        Image.fromarray((mask[..., 0] * 255).astype(np.uint8)).save(root / "masks" / f"c{i}.png")
    return root


TINY = ["--tile", "64", "--filters", "4", "--depth", "2", "--steps-per-epoch", "3"]


def run_in(folder, *args, **popen):
    env = dict(os.environ, KERAS_BACKEND="tensorflow")
    env.pop("KERAS_UNET_FAST", None)  # the real epochs and steps asked for
    return subprocess.run([KERAS_UNET, *args], capture_output=True, text=True, env=env,
                          cwd=folder, timeout=600, **popen)


def test_train_predict_evaluate_end_to_end(cell_folders, tmp_path):
    import csv

    import numpy as np
    from PIL import Image

    done = run_in(tmp_path, "train", "--images", str(cell_folders / "images"), "--masks",
                  str(cell_folders / "masks"), "--output", "cells.keras", "--epochs", "2", *TINY)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "training on 6 images, validating on 2; tiles 64x64, 1 output channel(s)" in done.stdout
    # uncompiled, built-in layers only: loads in a process that never imported keras_unet
    probe = subprocess.run(
        [sys.executable, "-c", "import sys, keras; m = keras.models.load_model(sys.argv[1]); "
         "print(m.output_shape, 'keras_unet' in sys.modules)", str(tmp_path / "cells.keras")],
        capture_output=True, text=True, timeout=300)
    assert probe.stdout.strip().splitlines()[-1] == "(None, None, None, 1) False", probe.stderr[-2000:]
    with open(tmp_path / "cells_training" / "history.csv") as file:
        epochs = [row["epoch"] for row in csv.DictReader(file)]
    assert epochs == ["0", "1"]

    done = run_in(tmp_path, "predict", "cells.keras", str(cell_folders / "images"), "masks")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "8 mask(s) written to masks" in done.stdout
    mask = np.asarray(Image.open(tmp_path / "masks" / "c0.png"))
    assert mask.shape == (96, 96) and set(np.unique(mask)) <= {0, 255}

    done = run_in(tmp_path, "evaluate", "masks", str(cell_folders / "masks"), "--csv", "scores.csv")
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["image", "dice", "iou", "pixel_error", "V_rand"]
    assert [line.split()[0] for line in lines[1:9]] == [f"c{i}.png" for i in range(8)]
    with open(tmp_path / "scores.csv") as file:
        rows = list(csv.DictReader(file))
    assert rows[-1]["name"] == "mean" and 0 <= float(rows[-1]["dice"]) <= 1

    done = run_in(tmp_path, "evaluate", str(cell_folders / "masks"), str(cell_folders / "masks"))
    mean = done.stdout.splitlines()[-1].split()
    assert mean == ["mean", "1.0000", "1.0000", "0.0000", "1.0000"]  # truth against itself


def test_train_resumes_after_an_interruption(cell_folders, tmp_path):
    import csv
    import signal
    import time

    arguments = ["train", "--images", str(cell_folders / "images"), "--masks",
                 str(cell_folders / "masks"), "--output", "cells.keras", "--epochs", "40", *TINY]
    env = dict(os.environ, KERAS_BACKEND="tensorflow")
    env.pop("KERAS_UNET_FAST", None)
    process = subprocess.Popen([KERAS_UNET, *arguments], cwd=tmp_path, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = tmp_path / "cells_training" / "history.csv"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and (not log.exists() or len(log.read_text().splitlines()) < 4):
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)  # a crash: no clean-up at all
    process.wait()
    interrupted = len(log.read_text().splitlines()) - 1
    assert 3 <= interrupted < 40, interrupted
    assert not (tmp_path / "cells.keras").exists()  # nothing half-written
    arguments[arguments.index("40")] = str(interrupted + 2)
    done = run_in(tmp_path, *arguments)
    assert done.returncode == 0, done.stderr[-2000:]
    with open(log) as file:
        epochs = [int(row["epoch"]) for row in csv.DictReader(file)]
    # the run went on from the last backed-up epoch instead of starting again
    assert epochs[-1] == interrupted + 1 and epochs.count(0) == 1, epochs
    assert (tmp_path / "cells.keras").exists()


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["train", "--images", "missing", "--masks", "missing"], "images_dir missing is not a folder"),
        (["train"], "give --images DIR and --masks DIR (or --dataset NAME)"),
        (["train", "--dataset", "synthetic", "--output", "model.h5"], "--output must end with .keras"),
        (["predict", "nope.keras", ".", "out"], "model nope.keras does not exist"),
        (["predict", "images/c0.png", "images", "out"], "images/c0.png is not a Keras model file"),
        (["evaluate", "images", "nothing"], "truths nothing is not a folder"),
    ],
)
def test_bad_arguments_are_one_clear_line(cell_folders, arguments, message):
    done = run_in(cell_folders, *arguments)
    assert done.returncode == 2
    assert message in done.stderr.strip().splitlines()[-1]
    assert not (cell_folders / "model.h5").exists() and not (cell_folders / "out").exists()


def test_mismatched_folders(cell_folders, tmp_path):
    import shutil

    shutil.copytree(cell_folders / "masks", tmp_path / "masks")
    (tmp_path / "masks" / "c3.png").rename(tmp_path / "masks" / "x3.png")
    done = run_in(tmp_path, "train", "--images", str(cell_folders / "images"), "--masks", "masks")
    assert done.returncode == 2
    assert "images without a mask in masks: c3.png; masks without an image in" in done.stderr
    assert not (tmp_path / "unet.keras").exists()


def test_demo_in_fast_mode(tmp_path):
    env = dict(os.environ, KERAS_BACKEND="tensorflow", KERAS_UNET_FAST="1")
    done = subprocess.run([KERAS_UNET, "demo", "--output", "demo"], capture_output=True,
                          text=True, env=env, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "4/4  held-out scores: dice" in done.stdout
    assert f"Figure: {(tmp_path / 'demo' / 'demo.png').resolve()}" in done.stdout
    from PIL import Image

    assert Image.open(tmp_path / "demo" / "demo.png").size[0] > 400
    assert (tmp_path / "demo" / "history.png").exists() and (tmp_path / "demo" / "unet.keras").exists()


@pytest.mark.parametrize("command", ["train", "predict", "evaluate", "demo"])
def test_every_command_explains_itself(command):
    done = run(command, "--help")
    assert done.returncode == 0 and "example" in done.stdout or command == "demo"
    assert len(done.stdout.splitlines()) > 5


def test_budget_stops_training_and_keeps_the_model(cell_folders, tmp_path):
    done = run_in(tmp_path, "train", "--images", str(cell_folders / "images"), "--masks",
                  str(cell_folders / "masks"), "--epochs", "30", "--budget", "0.0001", *TINY)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "the time budget of 0.0001 min is spent: stopping after epoch 1" in done.stdout
    assert len((tmp_path / "unet_training" / "history.csv").read_text().splitlines()) == 2
    assert (tmp_path / "unet.keras").exists()


def test_a_backup_cut_off_while_written_starts_the_run_again(cell_folders, tmp_path):
    backup = tmp_path / "unet_training" / "backup"
    backup.mkdir(parents=True)
    (backup / "latest.weights.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 40)  # a torn file
    (backup / "training_metadata.json").write_text('{"epoch": 3}')
    done = run_in(tmp_path, "train", "--images", str(cell_folders / "images"), "--masks",
                  str(cell_folders / "masks"), "--epochs", "2", *TINY)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "was cut off while being written: starting again" in done.stdout
    assert len((tmp_path / "unet_training" / "history.csv").read_text().splitlines()) == 3
