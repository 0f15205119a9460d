"""keras_unet.plan: the dataset fingerprint of small synthetic folders of each kind (gray and
RGB, bright-on-dark and dark-on-bright, tiny and large images, 2D and 3D, rare foreground),
as the command prints it and as its JSON file keeps it."""

import json

import numpy as np
import pytest
from commands import run_command
from PIL import Image

from keras_unet.images import from_folder, write_volume
from keras_unet.plan import describe, fingerprint, load_fingerprint, save_fingerprint


def _png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


@pytest.fixture
def fluorescence(tmp_path):
    """Gray, bright cells on a dark field: a tiny 24x16 image with one 4x4 cell and a large
    1040x1388 one with a 10x10 cell and a 3x3 one; 0/255 masks."""
    for name, (h, w), cells in (("tiny", (24, 16), [(2, 2, 4)]),
                                ("large", (1040, 1388), [(100, 200, 10), (500, 600, 3)])):
        image, mask = np.full((h, w), 10, np.uint8), np.zeros((h, w), np.uint8)
        for y, x, side in cells:
            image[y:y + side, x:x + side], mask[y:y + side, x:x + side] = 250, 255
        _png(tmp_path / "images" / f"{name}.png", image)
        _png(tmp_path / "masks" / f"{name}.png", mask)
    return tmp_path


def test_gray_bright_cells_of_two_sizes(fluorescence):
    split = from_folder(fluorescence / "images", fluorescence / "masks")
    fp = fingerprint(split.images, split.masks, names=split.names)
    assert (fp["images"], fp["spatial_dims"], fp["channels"]) == (2, 2, 1)
    assert fp["size"] == {"median": [532.0, 702.0], "min": [24.0, 16.0],
                          "max": [1040.0, 1388.0], "distinct": 2}
    assert fp["spacing"] is None
    assert fp["contrast"] == {"bright-on-dark": 2, "dark-on-bright": 0, "no foreground": 0}
    pixels = 24 * 16 + 1040 * 1388
    assert fp["classes"]["mode"] == "binary"
    assert fp["classes"]["pixels"] == [pixels - 16 - 109, 16 + 109]
    assert fp["classes"]["pixel_share"] == [round(1 - 125 / pixels, 6), round(125 / pixels, 6)]
    assert fp["classes"]["image_share"] == [1.0, 1.0]
    assert fp["objects"] == {"1": {"count": 3, "median": 16.0, "p5": 9.7, "p95": 91.6, "min": 9,
                                   "max": 100}}
    mean = (10 * (pixels - 125) + 250 * 125) / 255 / pixels  # exact: sums over every pixel
    assert fp["intensity"]["mean"] == [round(mean, 4)]
    assert fp["intensity"]["percentiles"]["50"] == [round(10 / 255, 4)]
    assert fp["intensity"]["ct_like"] == 0
    rows = {row["name"]: row for row in fp["per_image"]}
    assert rows["tiny"]["size"] == [24, 16] and rows["tiny"]["range"] == [0.0392, 0.9804]
    assert rows["tiny"]["mean"] == [round((10 * 368 + 250 * 16) / 255 / 384, 4)]


def test_rgb_stains_dark_on_bright_and_a_rare_class(tmp_path):
    """Bright-field: dark purple nuclei on a bright field (RGB), class indices 0/1/2, where
    class 2 is one 2x2 object in 512x512 pixels, and an image with no foreground."""
    for i in range(3):
        image = np.full((512, 512, 3), 230, np.uint8)
        mask = np.zeros((512, 512), np.uint8)
        if i < 2:
            image[50:70, 50:70], mask[50:70, 50:70] = (90, 40, 120), 1
            image[300:320, 80:100], mask[300:320, 80:100] = (90, 40, 120), 1
        if i == 0:
            image[400:402, 400:402], mask[400:402, 400:402] = (60, 20, 90), 2
        _png(tmp_path / "images" / f"s{i}.png", image)
        _png(tmp_path / "masks" / f"s{i}.png", mask)
    split = from_folder(tmp_path / "images", tmp_path / "masks", mask_mode="multiclass")
    fp = fingerprint(split.images, split.masks, names=split.names)
    assert fp["channels"] == 3 and fp["classes"]["mode"] == "multiclass"
    assert fp["contrast"] == {"bright-on-dark": 0, "dark-on-bright": 2, "no foreground": 1}
    assert fp["classes"]["pixels"] == [3 * 512 * 512 - 1604, 1600, 4]
    assert fp["classes"]["image_share"] == [1.0, 0.6667, 0.3333]
    assert fp["objects"]["1"]["count"] == 4 and fp["objects"]["1"]["min"] == 400
    assert fp["objects"]["2"] == {"count": 1, "median": 4.0, "p5": 4.0, "p95": 4.0, "min": 4,
                                  "max": 4}
    assert len(fp["intensity"]["mean"]) == len(fp["intensity"]["std"]) == 3
    assert fp["intensity"]["percentiles"]["99.5"] == [round(230 / 255, 4)] * 3
    lines = describe(fp)
    assert "share of the pixels 0: 99.7960%, 1: 0.2035%, 2: 0.0005%" in lines[4]
    assert lines[6] == "objects of class 2: 1, 4 to 4 pixels (median 4, 5th-95th percentile 4-4)"


def test_ignored_pixels_and_multilabel_masks():
    image = np.zeros((6, 6, 1), np.float32)
    mask = np.zeros((6, 6, 1), np.int32)
    mask[:2], mask[4:] = 255, 1  # two rows void, two rows class 1
    fp = fingerprint([image], [mask], ignore_index=255)
    assert fp["classes"]["pixels"] == [12, 12]
    labels = np.zeros((6, 6, 2), np.float32)
    labels[:3, :, 0], labels[2:, :, 1] = 1, 1  # overlapping labels: row 2 in both
    fp = fingerprint([image], [labels])
    assert fp["classes"]["mode"] == "multilabel" and fp["classes"]["pixels"] == [18, 24]
    assert fp["objects"] == {"0": {"count": 1, "median": 18.0, "p5": 18.0, "p95": 18.0,
                                   "min": 18, "max": 18},
                             "1": {"count": 1, "median": 24.0, "p5": 24.0, "p95": 24.0,
                                   "min": 24, "max": 24}}
    assert fp["contrast"]["no foreground"] == 1  # a flat image: no contrast to measure


@pytest.fixture
def volumes(tmp_path):
    """A CT-like volume in HU (air -1024, a 4x4x4 lesion at 60 in tissue at 40), 2.5 mm
    slices of 0.7 mm pixels, and an MRI-like one (0 to 900) at 1 mm: NIfTI files."""
    ct, mri = np.full((12, 32, 32), -1024, np.int16), np.zeros((8, 24, 24), np.int16)
    ct[2:10, 4:28, 4:28] = 40
    ct[4:8, 10:14, 10:14] = 60
    mri[1:7, 2:22, 2:22] = 300
    mri[3:5, 5:8, 5:8] = 900
    for name, scan, spacing, lesion in (("ct", ct, (2.5, 0.7, 0.7), (slice(4, 8), slice(10, 14),
                                         slice(10, 14))), ("mri", mri, (1, 1, 1), (
                                             slice(3, 5), slice(5, 8), slice(5, 8)))):
        label = np.zeros(scan.shape, np.uint8)
        label[lesion] = 1
        for folder, array in (("images", scan), ("masks", label)):
            (tmp_path / folder).mkdir(exist_ok=True)
            write_volume(tmp_path / folder / f"{name}.nii.gz", array, spacing=spacing)
    return tmp_path


def test_volumes_keep_their_spacing_and_stored_values(volumes):
    split = from_folder(volumes / "images", volumes / "masks", intensity=None)
    assert split.images[0].dtype == np.float32 and split.images[0].min() == -1024
    fp = fingerprint(split.images, split.masks, spacing=split.spacing, names=split.names)
    assert fp["spatial_dims"] == 3 and fp["size"]["max"] == [12.0, 32.0, 32.0]
    assert fp["spacing"] == {"median": [1.75, 0.85, 0.85], "min": [1.0, 0.7, 0.7],
                             "max": [2.5, 1.0, 1.0]}
    assert fp["intensity"]["ct_like"] == 1  # the CT only: air at -1024
    assert fp["contrast"]["bright-on-dark"] == 2
    assert fp["classes"]["pixels"] == [12 * 32 * 32 + 8 * 24 * 24 - 64 - 18, 64 + 18]
    assert fp["objects"]["1"]["count"] == 2 and fp["objects"]["1"]["max"] == 64
    assert "spacing (mm, D, H, W): median 1.75x0.85x0.85, from 1x0.7x0.7 to 2.5x1x1" in \
        describe(fp)
    assert "1 of 2 CT-like (air at -1000)" in describe(fp)[3]


def test_a_fingerprint_round_trips_through_its_file(volumes, tmp_path):
    split = from_folder(volumes / "images", volumes / "masks", intensity=None)
    fp = fingerprint(split.images, split.masks, spacing=split.spacing, names=split.names)
    path = save_fingerprint(fp, tmp_path / "fingerprint.json")
    assert load_fingerprint(path) == fp == json.loads(path.read_text())


def test_mismatched_inputs_are_named():
    with pytest.raises(ValueError, match=r"^fingerprint needs images with one mask \(and name\) "
                                         r"each; got 2 images, 1 mask, 2 names$"):
        fingerprint([np.zeros((4, 4, 1))] * 2, [np.zeros((4, 4, 1))])
    with pytest.raises(ValueError, match=r"^image 1: image \(4, 4, 3\) and mask \(4, 4, 1\) do "
                                         r"not match the first image's 2D grid with 1 channel"):
        fingerprint([np.zeros((4, 4, 1)), np.zeros((4, 4, 3))], [np.zeros((4, 4, 1))] * 2)


def test_the_command_prints_and_saves_it(fluorescence, tmp_path):
    done = run_command("fingerprint", str(fluorescence), "--output", str(tmp_path / "f.json"))
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[:4] == ["fingerprint of the data:", "  2 images, 2D, 1 channel",
                         "  size (H, W): median 532x702, from 24x16 to 1040x1388, 2 distinct "
                         "sizes", "  intensity per channel: mean [0.0393], sd [0.0088], "
                         "p0.5 [0.0392], p50 [0.0392], p99.5 [0.0392]"]
    assert lines[-1] == f"saved to {tmp_path / 'f.json'}"
    assert load_fingerprint(tmp_path / "f.json")["objects"]["1"]["count"] == 3
    done = run_command("fingerprint", str(tmp_path / "nothing"))
    assert (done.returncode, done.stderr) == (2, f"keras-unet fingerprint: error: --images "
                                                 f"{tmp_path / 'nothing' / 'images'} is not a "
                                                 f"folder\n")
    assert run_command("fingerprint").stderr == ("keras-unet fingerprint: error: give --images "
                                                 "DIR and --masks DIR, or a FOLDER holding "
                                                 "images/, masks/\n")
