"""keras_unet/cli.py: the installed `keras-unet` command, run as a user runs it."""

import json
import os
import re
import shutil
import socket
import subprocess
import sys

import pytest
from commands import KERAS_UNET, command_env, run_command

import keras_unet
from keras_unet.cli import make_parser


def run(*args):
    return run_command(*args, timeout=300)


# What TensorFlow prints at start-up (absl, oneDNN, CUDA probing), which no command shows.
NOISE = re.compile(r"absl|cuInit|oneDNN|cuda|cuDNN|E0000|I0000|W0000|rebuild TensorFlow")


def test_version():
    done = run("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"keras-unet {keras_unet.__version__}"


def test_info_lists_versions_backend_and_devices():
    done = run_command("info", quiet=False, timeout=300)  # as a user runs it
    assert not NOISE.search(done.stderr), done.stderr
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
    assert "argument --input-shape: expected HEIGHT,WIDTH,CHANNELS or DEPTH,HEIGHT,WIDTH," \
        "CHANNELS (integers; 'none' for any size); got 'big'" in done.stderr


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
    """As a user runs it: the real epochs and steps asked for, TensorFlow's log on."""
    return run_command(*args, cwd=folder, fast=False, quiet=False, **popen)


@pytest.fixture(scope="module")
def trained(cell_folders, tmp_path_factory):
    """``(folder, finished train command)``: a tiny model ``cells.keras`` trained by the
    command in ``folder``, under the umask 002."""
    folder = tmp_path_factory.mktemp("trained")
    done = run_in(folder, "train", "--images", str(cell_folders / "images"), "--masks",
                  str(cell_folders / "masks"), "--output", "cells.keras", "--epochs", "2",
                  *TINY, umask=0o002)
    assert done.returncode == 0, done.stderr[-2000:]
    return folder, done


def test_train_writes_a_plain_keras_model_and_only_its_log(trained):
    import csv

    folder, done = trained
    assert "training on 6 images, validating on 2; tiles 64x64, 1 output channel(s)" in done.stdout
    assert done.stdout.splitlines()[-1] == ("model saved to cells.keras; the log of every epoch "
                                            "is in cells_training/history.csv")
    assert oct((folder / "cells.keras").stat().st_mode & 0o777) == "0o664"  # umask 002
    # uncompiled, built-in layers only: loads in a process that never imported keras_unet
    probe = subprocess.run(
        [sys.executable, "-c", "import sys, keras; m = keras.models.load_model(sys.argv[1]); "
         "print(m.output_shape, 'keras_unet' in sys.modules)", str(folder / "cells.keras")],
        capture_output=True, text=True, timeout=300)
    assert probe.stdout.strip().splitlines()[-1] == "(None, None, None, 1) False", probe.stderr[-2000:]
    with open(folder / "cells_training" / "history.csv") as file:
        epochs = [row["epoch"] for row in csv.DictReader(file)]
    assert epochs == ["0", "1"]
    # no copy of the model, no backups left behind once the run is over
    assert sorted(p.name for p in (folder / "cells_training").iterdir()) == ["history.csv"]
    # the data's fingerprint, printed first and kept beside the model
    assert done.stdout.splitlines()[:2] == ["fingerprint of the data:",
                                            "  8 images, 2D, 1 channel"]
    assert "  saved to cells.fingerprint.json" in done.stdout.splitlines()
    fingerprint = json.loads((folder / "cells.fingerprint.json").read_text())
    assert fingerprint["size"]["distinct"] == 1 and fingerprint["classes"]["mode"] == "binary"


def test_train_shows_no_tensorflow_start_up_lines(trained):
    _, done = trained
    assert not NOISE.search(done.stderr), done.stderr[-3000:]


def test_predict_then_evaluate_as_the_readme_shows(trained, cell_folders, tmp_path):
    """The README's lines, in a folder laid out as they name it, under the umask 022."""
    import csv

    import numpy as np
    from PIL import Image

    shutil.copy(trained[0] / "cells.keras", tmp_path / "unet.keras")
    shutil.copytree(cell_folders / "images", tmp_path / "my" / "new_images")
    shutil.copytree(cell_folders / "masks", tmp_path / "my" / "new_truths")

    done = run_in(tmp_path, "predict", "unet.keras", "my/new_images", "masks/", "--probabilities",
                  umask=0o022)
    assert done.returncode == 0, done.stderr[-2000:]
    assert not NOISE.search(done.stderr), done.stderr[-2000:]
    assert done.stdout.splitlines()[-1] == ("8 mask(s) written to masks, their probabilities "
                                            "to masks/probabilities")
    mask = np.asarray(Image.open(tmp_path / "masks" / "c0.png"))
    assert mask.shape == (96, 96) and set(np.unique(mask)) <= {0, 255}
    assert oct((tmp_path / "masks" / "c0.png").stat().st_mode & 0o777) == "0o644"
    assert oct((tmp_path / "masks" / "probabilities" / "c0.tif").stat().st_mode & 0o777) == "0o644"

    done = run_in(tmp_path, "evaluate", "masks/", "my/new_truths", "--csv", "scores.csv",
                  umask=0o022)
    assert done.returncode == 0, done.stderr[-2000:]
    assert not NOISE.search(done.stderr), done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["image", "dice", "iou", "pixel_error", "V_rand"]
    assert [line.split()[0] for line in lines[1:9]] == [f"c{i}.png" for i in range(8)]
    assert lines[-1] == "scores per image written to scores.csv, their mean to scores_mean.csv"
    with open(tmp_path / "scores.csv") as file:
        rows = list(csv.DictReader(file))
    assert [row["name"] for row in rows] == [f"c{i}.png" for i in range(8)]  # images only
    with open(tmp_path / "scores_mean.csv") as file:
        (mean,) = list(csv.DictReader(file))
    assert list(mean) == ["images", "dice", "iou", "pixel_error", "V_rand"] and mean["images"] == "8"
    assert float(mean["dice"]) == pytest.approx(np.mean([float(row["dice"]) for row in rows]))
    assert lines[-2].split()[1:] == [f"{float(mean[k]):.4f}" for k in list(mean)[1:]]
    assert oct((tmp_path / "scores.csv").stat().st_mode & 0o777) == "0o644"

    done = run_in(tmp_path, "evaluate", str(cell_folders / "masks"), str(cell_folders / "masks"))
    mean = done.stdout.splitlines()[-1].split()
    assert mean == ["mean", "1.0000", "1.0000", "0.0000", "1.0000"]  # truth against itself


def test_volumes_through_train_predict_and_evaluate(shared_data, tmp_path):
    """Two real scans (NIfTI, MR) as a user's folders: the command chooses a 3D U-Net from the
    files, writes each mask as .nii.gz over its scan, and scores it per case in millimetres."""
    import nibabel as nib
    import numpy as np

    source = shared_data / "tumour_volumes"
    cases = ("breast1", "brain2")  # (21, 120, 45) and (23, 256, 256) voxels
    for folder, part in (("scans", "image"), ("labels", "label")):
        (tmp_path / folder).mkdir()
        for case in cases:
            (tmp_path / folder / f"{case}.nii.gz").symlink_to(source / f"{case}_{part}.nii.gz")
    done = run_in(tmp_path, "train", "--images", "scans", "--masks", "labels", "--output",
                  "unet.keras", "--tile", "16,32,32", "--filters", "4", "--depth", "2",
                  "--batch-size", "2", "--epochs", "1", "--steps-per-epoch", "2")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "training on 1 images, validating on 1; tiles 16x32x32 (33% centred on the " \
        "foreground), 1 output channel(s)" in \
        done.stdout
    import keras

    assert keras.models.load_model(tmp_path / "unet.keras").input_shape == (None,) * 4 + (1,)
    fingerprint = json.loads((tmp_path / "unet.fingerprint.json").read_text())
    assert fingerprint["spacing"]["max"] == [6.5, 0.7812, 0.7812]  # brain2's slices, breast1's
    assert fingerprint["classes"]["pixels"][1] == 453 + 143  # as PROVENANCE.md counts them
    assert fingerprint["intensity"]["percentiles"]["99.5"][0] > 200  # MRI values as stored

    done = run_in(tmp_path, "predict", "unet.keras", "scans", "masks")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines()[-1] == "2 mask(s) written to masks"
    for case in cases:
        scan, mask = nib.load(source / f"{case}_image.nii.gz"), nib.load(tmp_path / "masks" /
                                                                          f"{case}.nii.gz")
        assert mask.shape == scan.shape and mask.get_data_dtype() == np.uint8
        np.testing.assert_array_equal(mask.affine, scan.affine)  # it overlays the scan
        assert set(np.unique(np.asanyarray(mask.dataobj))) <= {0, 1}

    done = run_in(tmp_path, "evaluate", "masks", "labels")
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["image", "dice", "iou", "hd95", "surface_dice"]
    assert sorted(line.split()[0] for line in lines[1:3]) == ["brain2.nii.gz", "breast1.nii.gz"]
    done = run_in(tmp_path, "evaluate", "labels", "labels", "--tolerance", "2")
    assert done.stdout.splitlines()[-1].split() == ["mean", "1.0000", "1.0000", "0.0000",
                                                    "1.0000"]  # a truth against itself


@pytest.mark.backend("jax")
def test_train_distribute_on_two_emulated_devices(cell_folders, tmp_path):
    """--distribute on the JAX backend with two (emulated) CPU devices: it says the global
    batch and how it is split, trains and saves the model."""
    env = dict(command_env(), KERAS_BACKEND="jax",
               XLA_FLAGS="--xla_force_host_platform_device_count=2")
    done = subprocess.run([KERAS_UNET, "train", "--images", cell_folders / "images", "--masks",
                           cell_folders / "masks", "--output", "cells.keras", "--distribute",
                           *TINY], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert ("data parallel on 2 devices, 1 process(es): global batch 4 (2 per device), "
            "learning rate 0.001") in done.stdout
    assert (tmp_path / "cells.keras").exists()
    assert "ran out of data" not in done.stderr  # the validation tiles: a known number


def test_train_resumes_after_an_interruption(cell_folders, tmp_path):
    import csv
    import signal
    import time

    arguments = ["train", "--images", str(cell_folders / "images"), "--masks",
                 str(cell_folders / "masks"), "--output", "cells.keras", "--epochs", "40", *TINY]
    process = subprocess.Popen([KERAS_UNET, *arguments], cwd=tmp_path,
                               env=command_env(fast=False),
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
        (["train", "--images", "missing", "--masks", "missing"], "--images missing is not a folder"),
        (["train", "--dataset", "isbi2012", "--data-dir", "."],
         "--data-dir . is not a ISBI 2012 folder: it lacks test_images"),
        (["train", "--tile", "0"],
         "argument --tile: expected a positive integer, or D,H,W for volumes; got '0'"),
        (["train", "--mode", "binary"], "unrecognized arguments: --mode binary"),
        (["predict", "--overlap", "1", "m.keras", ".", "out"], "argument --overlap: expected a fraction"),
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
    (line,) = done.stderr.strip().splitlines()
    assert re.match(r"keras-unet( \w+)?: error: ", line) and message in line
    assert not (cell_folders / "model.h5").exists() and not (cell_folders / "out").exists()


def test_a_dataset_that_cannot_be_downloaded_is_one_line(tmp_path):
    """No network: the download of the ISBI 2012 set, pointed at a closed loopback port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens there once it is closed
    entry = {"url": "0.png", "sha256": "0" * 64, "filename": "images/00.png", "kind": "file"}
    registry = tmp_path / "registry.json"
    registry.write_text(json.dumps({"isbi2012": {"base_url": f"http://127.0.0.1:{port}/",
                                                 "files": [entry]}}))
    done = run_in(tmp_path, "train", "--dataset", "isbi2012",
                  env=dict(os.environ, KERAS_BACKEND="tensorflow", KERAS_UNET_REGISTRY=str(registry),
                           KERAS_UNET_DATA=str(tmp_path / "cache")))
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()  # no traceback
    assert line.startswith(f"keras-unet train: error: could not download http://127.0.0.1:{port}/0.png")
    assert line.endswith("Without a network, download it on another machine and give its "
                         "folder with --data-dir")


def test_mask_errors_name_the_command_options(cell_folders, tmp_path):
    import numpy as np
    from PIL import Image

    from keras_unet.cli import _read_folders, make_parser

    shutil.copytree(cell_folders / "masks", tmp_path / "masks")
    arguments = ["train", "--images", str(cell_folders / "images"), "--masks", "masks"]
    mask = np.asarray(Image.open(tmp_path / "masks" / "c1.png")).copy()
    mask[:3] = 100  # a JPEG-like mask: a few in-between values
    Image.fromarray(mask).save(tmp_path / "masks" / "c1.png")
    done = run_in(tmp_path, *arguments)
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("keras-unet train: error: the masks masks/c0.png, masks/c1.png")
    assert "the values 0, 100, 255; with --mask-mode auto masks must all be binary" in line
    assert line.endswith("Give --mask-threshold 127 to read the pixels above 127 as 1")
    # ... which reads them
    arguments[-1] = str(tmp_path / "masks")
    split = _read_folders(make_parser().parse_args([*arguments, "--mask-threshold", "127"]))
    images, masks = split.images, split.masks
    assert len(masks) == 8 and masks[1].dtype == np.float32 and not masks[1][:3].any()  # 100 < 127

    Image.fromarray(np.full((96, 96), 100, np.uint8)).save(tmp_path / "masks" / "c1.png")
    done = run_in(tmp_path, *arguments)
    (line,) = done.stderr.strip().splitlines()
    assert line.endswith("If each value is a class, give --palette '0=0;100=1;255=2'")
    assert "mask_mode" not in line and "palette=" not in line
    # ... which reads them as three classes
    masks = _read_folders(make_parser().parse_args([*arguments, "--palette", "0=0;100=1;255=2"])
                          ).masks
    assert masks[1].dtype == np.int32 and np.unique(masks[1]).tolist() == [1]


def test_library_names_in_messages_become_options():
    from keras_unet.cli import in_option_names

    assert in_option_names("give tile= or a smaller batch_size") == "give --tile or a smaller --batch-size"
    assert (in_option_names("padding='valid': n_classes=1 is one channel", "summary")
            == "--padding valid: --n-classes 1 is one channel")
    assert in_option_names("n_classes=3", "train") == "--classes 3"
    assert in_option_names("the tile and the padding") == "the tile and the padding"  # words stay
    assert in_option_names("the mask m.png is colour-coded; pass mask_mode='palette' and "
                           "palette={(r, g, b): class, ...}") == (
        "the mask m.png is colour-coded; save it as a gray mask of class indices: the command "
        "takes no colour palette")


def test_one_mask_mode_option():
    parse = make_parser().parse_args
    assert parse(["train"]).mask_mode == "auto"
    assert parse(["train", "--mask-mode", "classes"]).mask_mode == "multiclass"  # the alias
    assert parse(["train", "--mask-mode", "binary"]).mask_mode == "binary"
    with pytest.raises(SystemExit):  # masks files hold no multilabel form
        parse(["train", "--mask-mode", "multilabel"])


def test_mismatched_folders(cell_folders, tmp_path):
    import shutil

    shutil.copytree(cell_folders / "masks", tmp_path / "masks")
    (tmp_path / "masks" / "c3.png").rename(tmp_path / "masks" / "x3.png")
    done = run_in(tmp_path, "train", "--images", str(cell_folders / "images"), "--masks", "masks")
    assert done.returncode == 2
    assert "images without a mask in masks: c3.png; masks without an image in" in done.stderr
    assert not (tmp_path / "unet.keras").exists()


def test_demo_in_fast_mode(tmp_path):
    done = run_command("demo", "--output", "demo", cwd=tmp_path,
                       env=dict(os.environ, KERAS_UNET_FAST="1"), quiet=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert not NOISE.search(done.stderr), done.stderr[-2000:]
    assert "4/4  held-out scores: dice" in done.stdout
    assert f"Figure: {(tmp_path / 'demo' / 'demo.png').resolve()}" in done.stdout
    from PIL import Image

    assert Image.open(tmp_path / "demo" / "demo.png").size[0] > 400
    assert (tmp_path / "demo" / "history.png").exists() and (tmp_path / "demo" / "unet.keras").exists()


@pytest.mark.parametrize("command", ["train", "predict", "evaluate", "demo", "fingerprint"])
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


def test_a_model_that_could_not_be_written_is_written_by_the_next_run(cell_folders, tmp_path,
                                                                      monkeypatch, capsys):
    """The run trains, then its --output fails (a disk full, a folder gone read-only): the
    best model stays in the workdir, and running the command again writes it instead of
    training again; with other options, the run says whose the workdir is."""
    import csv
    from unittest import mock

    from keras_unet import cli, training

    monkeypatch.chdir(tmp_path)
    arguments = ["train", "--images", str(cell_folders / "images"), "--masks",
                 str(cell_folders / "masks"), "--output", "cells.keras", "--epochs", "2", *TINY]
    full = OSError(28, "No space left on device")
    with mock.patch.object(training, "_write_model", side_effect=full):
        assert cli.main(arguments) == 2
    line = capsys.readouterr().err.strip()
    assert line == ("keras-unet train: error: the model could not be written to cells.keras (No "
                    "space left on device); it is kept in cells_training/best.keras: run the same "
                    "command again, with another --output if need be, to write it without "
                    "training again")
    assert sorted(p.name for p in (tmp_path / "cells_training").iterdir()) == [
        "best.keras", "history.csv", "options.json"]

    assert cli.main([*arguments, "--filters", "8"]) == 2
    assert capsys.readouterr().err.strip() == (
        "keras-unet train: error: the backup in cells_training belongs to a run with other "
        "options (--filters 4 then, 8 now): give the same options to resume it, another "
        "--workdir, or delete cells_training to start again")

    assert cli.main(arguments) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "the run in cells_training had finished training: its best model is saved to "
        "cells.keras (not trained again); the log of every epoch is in "
        "cells_training/history.csv")
    assert (tmp_path / "cells.keras").is_file()
    with open(tmp_path / "cells_training" / "history.csv") as file:
        assert [row["epoch"] for row in csv.DictReader(file)] == ["0", "1"]  # 2 epochs, once
    assert sorted(p.name for p in (tmp_path / "cells_training").iterdir()) == ["history.csv"]
