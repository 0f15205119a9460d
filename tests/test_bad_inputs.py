"""A catalogue of bad inputs a user will meet, and what the package answers.

Each is a clear error naming the file or the argument and the problem, or is handled
as documented (16-bit and RGBA images, gray mixed with RGB).
"""

import json
import os
import re

import numpy as np
import pytest
from commands import run_command
from PIL import Image
from test_images import BINARY, CLASSES, GRAY, RGB, save_image  # the image-file writers

from keras_unet.data import make_dataset
from keras_unet.images import from_folder, mask_classes
from keras_unet.evaluation import check_same_kind, dice, isbi_scores
from keras_unet.weights import border_weight_map

RNG = np.random.default_rng(0)
IMAGES = RNG.random((3, 32, 32, 1)).astype(np.float32)
MASKS = IMAGES > 0.5
WITH_NAN = IMAGES.copy()
WITH_NAN[1, 5, 7, 0] = np.nan


def exactly(message):
    return pytest.raises(ValueError, match=re.escape(message))


# ----------------------------------------------------------- arrays into make_dataset

ARRAY_CASES = {
    "fewer masks than images": (
        dict(images=IMAGES, masks=MASKS[:2]), "images and masks differ in number: 3 and 2"),
    "image and mask of different sizes": (
        dict(images=IMAGES, masks=[MASKS[0], MASKS[1], MASKS[2][:31]]),
        "images[2] is (32, 32) but masks[2] is (31, 32)"),
    "NaN in an image": (
        dict(images=WITH_NAN, masks=MASKS), "images[1] has NaN pixels (1 of them)"),
    "NaN in a float mask": (
        dict(images=IMAGES, masks=np.where(np.isnan(WITH_NAN), np.nan, 1.0)),
        "masks[1] contains 1 NaN value(s)"),
    "soft mask values": (
        dict(images=IMAGES, masks=MASKS * 0.5),
        "masks[0] must hold 0 and 1 only (a binary mask; class indices are integers); got the "
        "values 0, 0.5"),
    "0/255 mask as uint8": (
        dict(images=IMAGES, masks=(MASKS * 255).astype(np.uint8)),
        "masks[0] holds 0 and 255 only: a binary mask stored as 0/255; pass (mask > 0)"),
    "negative class index": (
        dict(images=IMAGES, masks=np.full((3, 32, 32), -1)),
        "masks[0] must hold class indices (integers >= 0); got the values -1"),
    "strings instead of pixels": (
        dict(images=np.full((3, 32, 32), "x"), masks=MASKS),
        "images[0] must be a numeric array; got dtype <U1"),
    "float image in 0..255": (
        dict(images=IMAGES * 255, masks=MASKS),
        "images[0] has float32 pixels in [0.0"),
    "one-hot integer mask": (  # (H, W, L) floats or bools are multilabel masks
        dict(images=IMAGES, masks=np.zeros((3, 32, 32, 3), np.int32)),
        "masks[0] must have the shape (H, W) or (H, W, 1), or (H, W, labels) of 0/1 floats or "
        "bools for a multilabel mask; got (32, 32, 3) (int32)"),
    "gray and RGB arrays mixed": (
        dict(images=[IMAGES[0], np.repeat(IMAGES[1], 3, -1), IMAGES[2]], masks=MASKS),
        "images[1] has 3 channels, images[0] has 1: convert them to one"),
    "binary and class masks mixed": (
        dict(images=IMAGES, masks=[MASKS[0], MASKS[1].astype(np.int64), MASKS[2]]),
        "masks[1] is class indices but masks[0] is binary"),
    "no images": (dict(images=[], masks=[]), "images is empty: nothing to make a dataset of"),
    "tile larger than an image": (
        dict(images=IMAGES, masks=MASKS, tile=48), "tile 48 is larger than images[0], (32, 32): choose tile <= 32"),
    "images of several sizes and no tile": (
        dict(images=[IMAGES[0], IMAGES[1][:16]], masks=[MASKS[0], MASKS[1][:16]]),
        "images differ in size (2 sizes, e.g. [(16, 32), (32, 32)]): give tile="),
    "crop as large as the tile": (
        dict(images=IMAGES, masks=MASKS, tile=16, output_crop=8),
        "output_crop must be an integer >= 0 smaller than half the tile (16); got 8"),
    "negative pixel weights": (
        dict(images=IMAGES, masks=MASKS, weights=-np.ones((3, 32, 32))),
        "weights[0]: pixel weights must be finite and >= 0"),
    "weights of another size": (
        dict(images=IMAGES, masks=MASKS, weights=np.ones((3, 30, 30))),
        "weights[0] is (30, 30) but masks[0] is (32, 32)"),
    "unknown augmentation option": (
        dict(images=IMAGES, masks=MASKS, augment={"elastik": True}),
        "unknown Augmentation option 'elastik'; did you mean 'elastic'?"),
    "a batch size of zero": (
        dict(images=IMAGES, masks=MASKS, batch_size=0), "batch_size must be an integer >= 1; got 0"),
    "a shard index past the count": (
        dict(images=IMAGES, masks=MASKS, shard=(2, 2)),
        "shard must be (count, index), integers with 0 <= index < count; got (2, 2)"),
}


@pytest.mark.parametrize("case", sorted(ARRAY_CASES))
def test_make_dataset_refuses(case):
    arguments, message = ARRAY_CASES[case]
    with exactly(message):
        make_dataset(**arguments)


def test_uint16_arrays_are_scaled_to_unit_range():
    images = (IMAGES * 65535).astype(np.uint16)
    image, _ = next(iter(make_dataset(images, MASKS, batch_size=3, augment=False,
                                      shuffle=False, repeat=False)))
    np.testing.assert_allclose(np.asarray(image), images / 65535, atol=1e-6)


# ------------------------------------------------------- files into from_folder

def _pair(folder, image=GRAY, mask=BINARY * 255, name="a"):
    save_image(folder / "images" / f"{name}.png", image)
    save_image(folder / "masks" / f"{name}.png", mask)


def _unpartnered(folder):
    _pair(folder)
    save_image(folder / "images" / "b.png", GRAY)
    save_image(folder / "masks" / "c.png", GRAY)


def _truncated(folder):
    _pair(folder)
    path = folder / "images" / "a.png"
    path.write_bytes(path.read_bytes()[:60])


def _with_file(name, text):
    def make(folder):
        _pair(folder)
        (folder / "images" / name).write_text(text)

    return make


def _jpeg_mask(folder):
    save_image(folder / "images" / "a.png", GRAY)
    blocks = np.kron(BINARY, np.ones((4, 4), np.uint8))[:6, :8] * 255
    save_image(folder / "masks" / "a.jpg", blocks, quality=50)  # lossy: values near 0 and 255


def _empty(folder):
    (folder / "images").mkdir()
    (folder / "masks").mkdir()


ERRORS = {
    "missing partner": (
        _unpartnered,
        r"images without a mask in .*masks: b\.png; masks without an image in .*images: c\.png",
    ),
    "size mismatch": (
        lambda p: _pair(p, mask=np.zeros((5, 8), np.uint8)),
        r"the image .*a\.png is 8x6 but its mask .*a\.png is 8x5",
    ),
    "unknown values": (
        lambda p: _pair(p, mask=(CLASSES * 85).astype(np.uint8)),
        r"the mask .*a\.png has the values 0, 85, 170, 255; with mask_mode='auto'",
    ),
    "truncated": (_truncated, r"cannot read the image .*a\.png"),
    "not an image": (
        _with_file("notes.txt", "hi"),
        r"images_dir .*images holds files that are not images: notes\.txt",
    ),
    "image suffix, not an image": (_with_file("a.png", "hi"), r"cannot read the image .*a\.png"),
    "empty folder": (_empty, r"images_dir .*images holds no images"),
    "no folder": (lambda p: None, r"images_dir .*images is not a folder"),
    "two masks": (
        lambda p: (_pair(p), save_image(p / "masks" / "a_mask.png", BINARY)),
        r"the image a\.png has two masks: a\.png and a_mask\.png",
    ),
    "jpeg mask": (_jpeg_mask, r"the mask .*a\.jpg has the values"),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_from_folder_errors_name_the_file(tmp_path, case):
    make, message = ERRORS[case]
    make(tmp_path)
    with pytest.raises(ValueError, match=message):
        from_folder(tmp_path / "images", tmp_path / "masks")


def test_from_folder_mask_mode_binary_refuses_classes(tmp_path):
    _pair(tmp_path, mask=CLASSES)
    with pytest.raises(ValueError, match=r"has the values 0, 1, 2, 3; expected binary values"):
        from_folder(tmp_path / "images", tmp_path / "masks", mask_mode="binary")
    message = r"mask_mode must be one of 'auto', 'binary', 'multiclass', 'palette'; got 'rgb'"
    with pytest.raises(ValueError, match=message):
        from_folder(tmp_path / "images", tmp_path / "masks", mask_mode="rgb")
    for name in ("multiclass", "classes"):  # "classes": the other name of "multiclass"
        split = from_folder(tmp_path / "images", tmp_path / "masks", mask_mode=name)
        assert split.masks.dtype == np.int32


def test_colour_not_in_the_palette(tmp_path):
    palette = {(0, 0, 0): 0, (255, 0, 0): 1}
    colours = np.zeros((6, 8, 3), np.uint8)
    colours[2, 3] = (0, 255, 0)  # green is not in the palette
    _pair(tmp_path, mask=colours)
    with pytest.raises(ValueError, match=r"a\.png.*\(0, 255, 0\)"):
        from_folder(tmp_path / "images", tmp_path / "masks", mask_mode="palette", palette=palette)


def test_gray_and_rgb_images_mixed_become_rgb(tmp_path):
    _pair(tmp_path, image=GRAY, name="a")
    _pair(tmp_path, image=RGB, name="b")
    split = from_folder(tmp_path / "images", tmp_path / "masks")
    assert split.images.shape == (2, 6, 8, 3)
    np.testing.assert_allclose(split.images[0], np.repeat(GRAY[..., None], 3, -1) / 255, atol=1e-6)


def test_16_bit_images_are_scaled_by_65535(tmp_path):
    deep = (GRAY.astype(np.uint16) * 257)  # 0..65535
    save_image(tmp_path / "images" / "a.tif", deep)
    save_image(tmp_path / "masks" / "a.png", BINARY * 255)
    split = from_folder(tmp_path / "images", tmp_path / "masks")
    np.testing.assert_allclose(split.images[0, ..., 0], deep / 65535, atol=1e-6)


def test_rgba_with_transparency_is_refused_by_name(tmp_path):
    rgba = np.dstack([RGB, np.full((6, 8), 255, np.uint8)])
    rgba[0, 0, 3] = 0  # one transparent pixel: what colour is it?
    _pair(tmp_path, image=rgba)
    with pytest.raises(ValueError, match=r"a\.png"):
        from_folder(tmp_path / "images", tmp_path / "masks")


# ---------------------------------------- predict: outputs, tiles, models, losses
# A prediction either writes what was asked, or stops with one line before it reads an
# image: it never replaces a file it did not write without being told (overwrite=True,
# --overwrite), never mixes its masks with a second run's, and a run that stops on a bad
# file says how far it got. Messages are exact; the command's speak its options only.

def _predict_model():
    import keras

    from keras_unet import build_unet

    keras.utils.set_random_seed(0)
    return build_unet((None, None, 1), 1, depth=2, filters=4)


def _cells(folder, names=("c0", "c1", "c2")):
    (folder / "in").mkdir(parents=True, exist_ok=True)
    for name in names:
        save_image(folder / "in" / f"{name}.png", RNG.integers(0, 256, (40, 48), np.uint8))


def _own_c0(folder):
    """A folder of the user's in which c0.png is their own file."""
    _cells(folder)
    (folder / "out").mkdir()
    save_image(folder / "out" / "c0.png", GRAY)
    return dict(output_dir=folder / "out")


def _parent_a_file(folder):
    _cells(folder)
    (folder / "notes").write_text("a file")
    return dict(output_dir=folder / "notes" / "out")


def _output_a_file(folder):
    _cells(folder)
    (folder / "out").write_text("a file")
    return dict(output_dir=folder / "out")


def _bad_file_among_good(folder):
    _cells(folder)
    (folder / "in" / "c1.png").write_bytes(b"not a PNG")
    return dict(output_dir=folder / "out")


def _under_proc(folder):
    from pathlib import Path

    _cells(folder)
    return dict(output_dir=Path("/proc/keras-unet-test"))  # takes no folders, even for root


def _with(**arguments):
    def make(folder):
        _cells(folder)
        return dict(output_dir=folder / "out", **arguments)

    return make


PREDICT_CASES = {  # name: (make the folder -> predict_folder's arguments, the message)
    "the user's own file in the output folder": (
        _own_c0,
        "output_dir {folder}/out already holds files this run would write (c0.png): pass "
        "overwrite=True to replace them (a run again into the same folder needs it too), or "
        "choose another output_dir"),
    "the output a file": (
        _output_a_file, "output_dir {folder}/out is a file: give a folder for the masks"),
    "the output below a file": (
        _parent_a_file,
        "output_dir {folder}/notes/out cannot be made: {folder}/notes is a file: give a folder "
        "for the masks"),
    "the output under /proc": (
        _under_proc,
        "cannot write to output_dir /proc/keras-unet-test: /proc takes no new files (No such "
        "file or directory); give a folder where you can write"),
    "a bad file among good ones": (
        _bad_file_among_good,
        "cannot read the image {folder}/in/c1.png: cannot identify image file "
        "'{folder}/in/c1.png'. Stopped at c1.png: 1 of 3 masks were written to output_dir "
        "{folder}/out, the rest not predicted"),
    "a tile that does not fit the model": (
        _with(tile=33),
        "tile 33 does not fit the model: input size 33 does not fit a depth-2 U-Net with "
        "padding='same': it must be a multiple of 4 (2**depth). Nearest sizes that fit: 32, 36"),
    "a tile below the model's smallest": (
        _with(tile=2),
        "tile 2 does not fit the model: input size 2 does not fit a depth-2 U-Net with "
        "padding='same': it must be at least 4, the smallest input it takes (its output is "
        "then 4 px). Nearest sizes that fit: 4"),
    "a threshold of NaN": (_with(threshold=float("nan")),
                           "threshold must be a finite number >= 0 and <= 1; got nan"),
    "a threshold of 255": (_with(threshold=255), "threshold must be a finite number >= 0 and <= 1; got 255"),
}


@pytest.mark.parametrize("case", sorted(PREDICT_CASES))
def test_predict_folder_refuses_before_reading_an_image(tmp_path, case):
    from keras_unet.inference import predict_folder

    make, message = PREDICT_CASES[case]
    arguments = make(tmp_path)
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    with pytest.raises(ValueError, match="^" + re.escape(message.format(folder=tmp_path)) + "$"):
        predict_folder(_predict_model(), tmp_path / "in", progress=False, **arguments)
    after = sorted(str(p) for p in tmp_path.rglob("*"))
    if case == "a bad file among good ones":  # the mask before it, whole; nothing after it
        assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["c0.png"]
    else:  # nothing made, nothing replaced, no lock left behind
        assert after == before
    if case == "the user's own file in the output folder":
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out" / "c0.png")), GRAY)


def test_predict_folder_overwrite_replaces_and_runs_again(tmp_path):
    from keras_unet.inference import predict_folder

    _own_c0(tmp_path)
    model = _predict_model()
    written = predict_folder(model, tmp_path / "in", tmp_path / "out", overwrite=True,
                             progress=False)
    assert [p.name for p in written] == ["c0.png", "c1.png", "c2.png"]
    assert np.asarray(Image.open(tmp_path / "out" / "c0.png")).shape == (40, 48)  # replaced
    again = predict_folder(model, tmp_path / "in", tmp_path / "out", overwrite=True,
                           progress=False)
    assert again == written
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["c0.png", "c1.png", "c2.png"]


def test_a_second_run_into_a_folder_in_use_is_refused(tmp_path):
    from keras_unet.images import locked
    from keras_unet.inference import predict_file, predict_folder

    _cells(tmp_path)
    (tmp_path / "out").mkdir()
    message = (f"another prediction is writing to output_dir {tmp_path}/out (it holds "
               f"{tmp_path}/out/.keras-unet.lock): wait until it is done, or choose another "
               f"output_dir")
    model = _predict_model()
    with locked(tmp_path / "out" / ".keras-unet.lock", wait=False):  # the first run's lock
        with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
            predict_folder(model, tmp_path / "in", tmp_path / "out", progress=False)
        with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
            predict_file(model, tmp_path / "in" / "c0.png", tmp_path / "out", progress=False)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [".keras-unet.lock"]
    # once the first run is over (the lock released), a run goes ahead and removes the lock
    predict_folder(model, tmp_path / "in", tmp_path / "out", progress=False)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["c0.png", "c1.png", "c2.png"]


MODEL_CASES = {  # name: (the call, the message)
    "channels first": (
        lambda: _build((1, 64, 64)),
        "input height 1 does not fit a depth-4 U-Net (input_shape (1, 64, 64) has 64 "
        "channels): did you mean (64, 64, 1)? the channel axis goes last"),
    "RGB channels first": (
        lambda: _build((3, 256, 256)),
        "input height 3 does not fit a depth-4 U-Net (input_shape (3, 256, 256) has 256 "
        "channels): did you mean (256, 256, 3)? the channel axis goes last"),
    "a valid tile below the model's smallest": (
        lambda: _predict_tiled_valid(tile=40),
        "tile 40 does not fit the model: input size 40 does not fit a depth-2 U-Net with "
        "padding='valid': it must be at least 44, the smallest input it takes (its output is "
        "then 4 px). Nearest sizes that fit: 44"),
    "a size below the paper's smallest": (
        lambda: _output_size(100),
        "input size 100 does not fit a depth-4 U-Net with padding='valid': it must be at "
        "least 188, the smallest input it takes (its output is then 4 px). Nearest sizes that "
        "fit: 188"),
}


def _build(shape):
    from keras_unet import build_unet

    return build_unet(shape, 1)


def _output_size(size):
    from keras_unet import output_size

    return output_size(size)


def _predict_tiled_valid(**arguments):
    from keras_unet import build_unet
    from keras_unet.inference import predict_tiled

    model = build_unet((None, None, 1), 1, depth=2, filters=4, padding="valid")
    return predict_tiled(model, np.zeros((64, 64)), progress=False, **arguments)


@pytest.mark.parametrize("case", sorted(MODEL_CASES))
def test_model_sizes_say_what_fits(case):
    call, message = MODEL_CASES[case]
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        call()


def test_a_sigmoid_model_refuses_class_index_masks():
    """Class masks 0..3 on a one-output model would be clipped to 0/1 and train a binary
    model without a word: the package's losses stop at the first step."""
    from keras_unet.training import compile_unet

    images, labels = IMAGES, (IMAGES[..., 0] * 4).astype(np.int32)  # 0, 1, 2, 3
    assert set(np.unique(labels)) == {0, 1, 2, 3}
    model = _predict_model()
    compile_unet(model)
    with pytest.raises(ValueError, match="^" + re.escape(
            "the model has one sigmoid output (binary) but the masks are integers (int32), "
            "which the package reads as class indices: build it with n_classes=<the number of "
            "classes>, or give binary masks as float 0/1 (masks.astype('float32'))") + "$"):
        model.fit(images, labels, epochs=1, verbose=0)
    # the package's own pipeline gives binary masks as float32 and class masks as int32
    _, binary = next(iter(make_dataset(IMAGES, MASKS, batch_size=3, augment=False)))
    _, classes = next(iter(make_dataset(IMAGES, labels, batch_size=3, augment=False)))
    assert (binary.dtype.name, classes.dtype.name) == ("float32", "int32")
    fresh = _predict_model()
    compile_unet(fresh)
    fresh.fit(IMAGES, MASKS.astype(np.float32), epochs=1, verbose=0)  # binary masks train


# the command: each of these stops with one line, before reading an image
PREDICT_HELP = " (see keras-unet predict --help)"
PREDICT_COMMAND_CASES = {  # name: (make the folder, the arguments after the model, the line)
    "the user's own file in the output folder": (
        _own_c0, ["in", "out"],
        "keras-unet predict: error: output out already holds files this run would write "
        "(c0.png): pass --overwrite to replace them (a run again into the same folder needs "
        "it too), or choose another output"),
    "a tile that does not fit the model": (
        _cells, ["in", "out", "--tile", "33"],
        "keras-unet predict: error: --tile 33 does not fit the model: input size 33 does not "
        "fit a depth-2 U-Net with same padding: it must be a multiple of 4 (2**depth). Nearest "
        "sizes that fit: 32, 36"),
    "a threshold of NaN": (
        _cells, ["in", "out", "--threshold", "nan"],
        "keras-unet predict: error: argument --threshold: expected a number in [0, 1]; got "
        "'nan'" + PREDICT_HELP),
    "a threshold above 1": (
        _cells, ["in", "out", "--threshold", "127"],
        "keras-unet predict: error: argument --threshold: expected a number in [0, 1]; got "
        "'127'" + PREDICT_HELP),
    "an overlap of NaN": (
        _cells, ["in", "out", "--overlap", "nan"],
        "keras-unet predict: error: argument --overlap: expected a fraction in [0, 1); got "
        "'nan'" + PREDICT_HELP),
    "a batch of no tiles": (
        _cells, ["in", "out", "--batch-size", "0"],
        "keras-unet predict: error: argument --batch-size: expected a positive integer; got "
        "'0'" + PREDICT_HELP),
    "the output under /proc": (
        _cells, ["in", "/proc/keras-unet-test"],
        "keras-unet predict: error: cannot write to output /proc/keras-unet-test: /proc takes "
        "no new files (No such file or directory); give a folder where you can write"),
    "the output below a file": (
        _parent_a_file, ["in", "notes/out"],
        "keras-unet predict: error: output notes/out cannot be made: notes is a file: give a "
        "folder for the masks"),
    "an RGB image for a gray model": (
        lambda p: save_image(p / "rgb.png", RGB), ["rgb.png", "out"],
        "keras-unet predict: error: rgb.png: the image has 3 channels but the model takes 1 "
        "(save the images as gray ones)"),
    "a bad file among good ones": (
        _bad_file_among_good, ["in", "out"],
        "keras-unet predict: error: cannot read the image in/c1.png: cannot identify image "
        "file 'in/c1.png'. Stopped at c1.png: 1 of 3 masks were written to output out, the "
        "rest not predicted"),
}


@pytest.fixture(scope="module")
def predict_model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "unet.keras"
    _predict_model().save(path)
    return path


@pytest.mark.parametrize("case", sorted(PREDICT_COMMAND_CASES))
def test_predict_command_stops_with_one_line(tmp_path, predict_model_file, case):
    make, arguments, line = PREDICT_COMMAND_CASES[case]
    make(tmp_path)
    done = run_command("predict", str(predict_model_file), *arguments, cwd=tmp_path)
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [line], done.stderr[-3000:]  # one line, this one
    assert done.returncode == 2
    assert not re.search(r"\b\w+=|\[\.\.\., |np\.", line)  # no Python in the command's words


# ------------------------------------ library: mask values that would read wrong
# Each would once have read as something that looks fine and is not (256 classes from a
# JPEG mask, a void border as class 255, an animated GIF's first frame); now it stops
# with one line saying what is wrong and what to pass. Messages are exact.

def _void(folder):
    void = BINARY.copy()
    void[0] = 255  # an unlabelled border
    _pair(folder, mask=void)


def _animated(folder):
    save_image(folder / "images" / "a.png", GRAY)
    (folder / "masks").mkdir()
    frames = [Image.fromarray(BINARY * 255), Image.fromarray(255 - BINARY * 255)]
    frames[0].save(folder / "masks" / "a.gif", save_all=True, append_images=frames[1:])


A_PNG = ("masks", "a.png")  # a path in the test's folder
ANY = None  # any text (the values of a JPEG mask depend on the JPEG library)
AUTO = ("; with mask_mode='auto' masks must all be binary (0/255 or 0/1) or class indices "
        "below 64. ")
MASK_CASES = {  # name: (make the folder, from_folder's arguments, the message's parts)
    "void border of 255 without ignore_index": (
        _void, {}, ["the mask ", A_PNG, " has the values 0, 1, 255" + AUTO
                    + "If 255 marks unlabelled pixels, pass ignore_index=255"]),
    "void border read as class indices": (
        _void, dict(mask_mode="multiclass"),
        ["the mask ", A_PNG, " has the values 0, 1, 255, which as class indices make 256 "
                             "classes, 253 of them never used. If 255 marks unlabelled pixels, "
                             "pass ignore_index=255"]),
    "0/128 masks": (
        lambda p: _pair(p, mask=BINARY * 128), {},
        ["the mask ", A_PNG, " has the values 0, 128" + AUTO + "They look like binary masks "
                             "of 0 and 128: pass threshold=64 to read the pixels above 64 as 1"]),
    "0/128 masks read as class indices": (
        lambda p: _pair(p, mask=BINARY * 128), dict(mask_mode="multiclass"),
        ["the mask ", A_PNG, " has the values 0, 128, which as class indices make 129 "
                             "classes, 127 of them never used. They look like binary masks of 0 "
                             "and 128: pass threshold=64 to read the pixels above 64 as 1"]),
    "jpeg mask read as class indices": (
        _jpeg_mask, dict(mask_mode="multiclass"),
        ["the mask ", ("masks", "a.jpg"), " has the values 0, ", ANY, ", which as class "
         "indices make 256 classes, ", ANY, " of them never used. They "
         "look like binary masks with in-between values at the edges (JPEG, smoothing): pass "
         "threshold=127 to read the pixels above 127 as 1"]),
    "gray levels read as class indices": (
        lambda p: _pair(p, mask=(CLASSES * 85).astype(np.uint8)), dict(mask_mode="multiclass"),
        ["the mask ", A_PNG, " has the values 0, 85, 170, 255, which as class indices make "
                             "256 classes, 252 of them never used. If each value is a class, "
                             "number them with palette={(0, 0, 0): 0, (85, 85, 85): 1, (170, "
                             "170, 170): 2, (255, 255, 255): 3}"]),
    "threshold on 0/1 masks": (
        lambda p: _pair(p, mask=BINARY), dict(threshold=127),
        ["threshold=127 reads every pixel of the mask ", A_PNG, " as 0 (it holds 0, 1): leave "
                                                               "it out for 0/1 masks, else give "
                                                               "one below 255 (e.g. 127 for 8 "
                                                               "bits)"]),
    "threshold at the top value": (
        _pair, dict(threshold=255),
        ["threshold=255 reads every pixel of the mask ", A_PNG, " as 0 (it holds 0, 255): leave "
                                                               "it out for 0/1 masks, else give "
                                                               "one below 255 (e.g. 127 for 8 "
                                                               "bits)"]),
    "negative threshold": (
        _pair, dict(threshold=-1),
        ["threshold must be a finite number >= 0; got -1"]),
    "threshold with class masks": (
        _pair, dict(threshold=127, mask_mode="multiclass"),
        ["threshold= reads binary masks; it does not go with mask_mode='multiclass'"]),
    "threshold and ignore_index": (
        _pair, dict(threshold=127, ignore_index=255),
        ["threshold= reads binary masks; it does not go with ignore_index="]),
    "ignore_index with binary masks": (
        _void, dict(ignore_index=255, mask_mode="binary"),
        ["ignore_index= keeps unlabelled pixels in class-index masks; it does not go with "
         "mask_mode='binary': use mask_mode='multiclass'"]),
    "ignore_index among the classes": (
        lambda p: _pair(p, mask=CLASSES), dict(ignore_index=2),
        ["ignore_index=2 is not above the classes 0 to 3: the ignored value must be above "
         "every class (e.g. ignore_index=255)"]),
    "ignore_index not an integer": (
        _void, dict(ignore_index="255"),
        ["ignore_index must be an integer >= 0, the value of unlabelled pixels (e.g. 255); "
         "got '255'"]),
    "animated GIF mask": (
        _animated, {},
        [("masks", "a.gif"), " has 2 frames (animated or multi-page); save one image"]),
}


@pytest.mark.parametrize("case", sorted(MASK_CASES))
def test_from_folder_refuses_masks_that_would_read_wrong(tmp_path, case):
    make, arguments, parts = MASK_CASES[case]
    make(tmp_path)
    pattern = "".join(".*" if p is ANY else re.escape(str(tmp_path.joinpath(*p)))
                      if isinstance(p, tuple) else re.escape(p) for p in parts)
    with pytest.raises(ValueError, match="^" + pattern + "$"):
        from_folder(tmp_path / "images", tmp_path / "masks", **arguments)


SCORE_CASES = {  # name: (the call, the message)
    "binary prediction against class indices": (
        lambda: check_same_kind(CLASSES, BINARY.astype(np.float32)),
        "truth holds class indices (0, 1, 2, 3) but prediction is a binary mask (float32 in "
        "[0, 1]): score a binary prediction against binary truths and class indices against "
        "class indices"),
    "binary prediction scored as four classes": (
        lambda: dice(CLASSES, BINARY > 0, n_classes=4),
        "truth holds class indices (0, 1, 2, 3) but prediction is a binary mask (bool in [0, "
        "1]): score a binary prediction against binary truths and class indices against class "
        "indices"),
    "class indices in a binary score": (
        lambda: dice(CLASSES, CLASSES),
        "truth holds class indices (0, 1, 2, 3): pass n_classes= to score classes"),
    "class masks counted with a void border": (
        lambda: mask_classes([CLASSES, np.full((6, 8), 255)]),
        "the mask masks[1] has the values 0, 1, 2, 3, 255, which as class indices make 256 "
        "classes, 251 of them never used. If 255 marks unlabelled pixels, pass "
        "ignore_index=255"),
    "void border in a weight map": (
        lambda: border_weight_map(np.where(np.arange(8) < 1, 255, BINARY)),
        "labels has the values 0, 1, 255, which as class indices make 256 classes, 253 of them "
        "never used. If 255 marks unlabelled pixels, pass ignore_index=255"),
}


@pytest.mark.parametrize("case", sorted(SCORE_CASES))
def test_scores_and_class_counts_refuse_mixed_kinds(case):
    call, message = SCORE_CASES[case]
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        call()


def test_mixed_binary_encodings_are_read_and_said(tmp_path):
    _pair(tmp_path, mask=BINARY, name="a")
    _pair(tmp_path, mask=BINARY * 255, name="b")
    with pytest.warns(UserWarning, match=re.escape(
            f"{tmp_path / 'masks'} mixes 1 mask of 0/1 (a.png) and 1 of 0/255 (b.png): all read "
            f"as 0/1")):
        split = from_folder(tmp_path / "images", tmp_path / "masks")
    np.testing.assert_array_equal(split.masks[..., 0], np.stack([BINARY, BINARY]))


def test_empty_truth_scores_without_nan():
    empty = np.zeros((6, 8))
    scores = isbi_scores(empty, empty)
    assert (scores["V_rand"], scores["V_info"], scores["pixel_error"]) == (1.0, 1.0, 0.0)
    assert isbi_scores(BINARY * 1.0, empty, thresholds=[0.5])["V_rand"] == 0.0


# ------------------------------------------------ the command: train and evaluate
# Run as a user runs them. Each either does what was meant or stops (exit 2) with one
# line that says what is wrong and what to do, in the command's options (never a Python
# argument), without a traceback; nothing is written that looks like a result.

SMALL = ["--depth", "2", "--filters", "4", "--tile", "32", "--steps-per-epoch", "1",
         "--epochs", "1"]
FOUR = np.kron(np.arange(4), np.ones((32, 8), np.uint8)).astype(np.uint8)  # 0 1 2 3 bands
CELLS = (np.add.outer(np.arange(32), np.arange(32)) % 11 < 4).astype(np.uint8)  # stripes


def _folders(folder, masks, name="masks", images=4):
    """images/ and ``name``/ with ``images`` gray 32x32 images and these masks
    (one array for all, or one each)."""
    for i in range(images):
        mask = masks[i] if isinstance(masks, list) else masks
        save_image(folder / "images" / f"m{i}.png", RNG.integers(0, 256, (32, 32), np.uint8))
        save_image(folder / name / f"m{i}.png", mask)


def _train_on(masks, name="masks"):
    def make(folder):
        _folders(folder, masks, name)
        return ["train", "--images", "images", "--masks", name, *SMALL]

    return make


def _evaluate(predictions, truths):
    def make(folder):
        _folders(folder, predictions, "predicted")
        _folders(folder, truths, "truth")
        return ["evaluate", "predicted", "truth"]

    return make


def _train_with(*options):
    """train on binary masks with these options (the last given wins)."""
    def make(folder):
        _folders(folder, CELLS * 255)
        return ["train", "--images", "images", "--masks", "masks", *SMALL, *options]

    return make


def _backup_of_another_run(folder):
    """A run with --filters 4 interrupted in unet_training; now --filters 8."""
    _folders(folder, CELLS * 255)
    (folder / "unet_training" / "backup").mkdir(parents=True)
    options = dict(images=4, channels=1, n_classes=1, tile=32, depth=2, filters=4,
                   padding="same", batch_size=4, steps_per_epoch=1, loss="dice_ce",
                   learning_rate=0.001, augment=True, validation_split=0.2, seed=0)
    (folder / "unet_training" / "options.json").write_text(json.dumps(options))
    return ["train", "--images", "images", "--masks", "masks", *SMALL, "--filters", "8"]


def _colour_masks(folder):
    colours = np.zeros((32, 32, 3), np.uint8)
    colours[:, 16:] = (255, 0, 0)
    colours[:4, :4] = (0, 255, 0)  # green: a colour the palette below does not name
    _folders(folder, colours)
    return folder


TRAIN_HELP = " (see keras-unet train --help)"
COMMAND_CASES = {  # name: (make the folder -> the command's arguments, the one line)
    "learning rate nan": (
        _train_with("--learning-rate", "nan"),
        "keras-unet train: error: argument --learning-rate: expected a positive number; got "
        "'nan'" + TRAIN_HELP),
    "learning rate inf": (
        _train_with("--learning-rate", "inf"),
        "keras-unet train: error: argument --learning-rate: expected a positive number; got "
        "'inf'" + TRAIN_HELP),
    "learning rate negative": (
        _train_with("--learning-rate", "-1"),
        "keras-unet train: error: argument --learning-rate: expected a positive number; got "
        "'-1'" + TRAIN_HELP),
    "learning rate zero": (
        _train_with("--learning-rate", "0"),
        "keras-unet train: error: argument --learning-rate: expected a positive number; got "
        "'0'" + TRAIN_HELP),
    "budget zero": (
        _train_with("--budget", "0"),
        "keras-unet train: error: argument --budget: expected a positive number; got '0'"
        + TRAIN_HELP),
    "negative budget": (
        _train_with("--budget", "-1"),
        "keras-unet train: error: argument --budget: expected a positive number; got '-1'"
        + TRAIN_HELP),
    "budget nan": (
        _train_with("--budget", "nan"),
        "keras-unet train: error: argument --budget: expected a positive number; got 'nan'"
        + TRAIN_HELP),
    "zero epochs": (
        _train_with("--epochs", "0"),
        "keras-unet train: error: argument --epochs: expected a positive integer; got '0'"
        + TRAIN_HELP),
    "zero steps per epoch": (
        _train_with("--steps-per-epoch", "0"),
        "keras-unet train: error: argument --steps-per-epoch: expected a positive integer; "
        "got '0'" + TRAIN_HELP),
    "zero batch size": (
        _train_with("--batch-size", "0"),
        "keras-unet train: error: argument --batch-size: expected a positive integer; got '0'"
        + TRAIN_HELP),
    "validation split above 1": (
        _train_with("--validation-split", "1.5"),
        "keras-unet train: error: argument --validation-split: expected a fraction in [0, 1); "
        "got '1.5'" + TRAIN_HELP),
    "negative validation split": (
        _train_with("--validation-split", "-0.5"),
        "keras-unet train: error: argument --validation-split: expected a fraction in [0, 1); "
        "got '-0.5'" + TRAIN_HELP),
    "mask threshold nan": (
        _train_with("--mask-threshold", "nan"),
        "keras-unet train: error: argument --mask-threshold: expected a number >= 0; got "
        "'nan'" + TRAIN_HELP),
    "negative ignore index": (
        _train_with("--ignore-index", "-1"),
        "keras-unet train: error: argument --ignore-index: expected an integer >= 0; got "
        "'-1'" + TRAIN_HELP),
    "palette not pairs": (
        _train_with("--palette", "red=1"),
        "keras-unet train: error: argument --palette: 'red=1' is not R,G,B=CLASS (0..255 "
        "each, a class index >= 0), e.g. '0,0,0=0;255,0,0=1'" + TRAIN_HELP),
    "palette neither file nor pairs": (
        _train_with("--palette", "colours.txt"),
        "keras-unet train: error: argument --palette: 'colours.txt' is neither a file nor "
        "R,G,B=CLASS pairs, e.g. '0,0,0=0;255,0,0=1'" + TRAIN_HELP),
    "tile that does not fit the network": (
        _train_with("--tile", "30"),
        "keras-unet train: error: --tile 30 does not fit a depth-2 U-Net with --padding same "
        "(a multiple of 2**depth = 4); nearest sizes that fit: 28, 32"),
    "tile zero": (
        _train_with("--tile", "0"),
        "keras-unet train: error: argument --tile: expected a positive integer, or D,H,W for "
        "volumes; got '0'"
        + TRAIN_HELP),
    "a NaN loss": (  # a learning rate so high that the weights overflow at once
        _train_with("--learning-rate", "1e30"),
        "keras-unet train: error: the loss became NaN in epoch 1 and training stopped; no "
        "model was saved. Try a lower --learning-rate (this run's: 1e+30)"),
    "fewer classes than the masks use": (
        lambda p: _train_on(FOUR)(p) + ["--classes", "2"],
        "keras-unet train: error: the masks masks/m0.png, masks/m1.png, masks/m2.png and 1 "
        "more have the values 0, 1, 2, 3, but --classes 2 makes the classes 0 and 1: the "
        "pixels of 2, 3 (50% of them) would be left out of training and scores. Pass "
        "--classes 4"),
    "void border without --ignore-index": (
        _train_on(np.where(np.arange(32)[:, None] < 2, 255, CELLS).astype(np.uint8)),
        "keras-unet train: error: the masks masks/m0.png, masks/m1.png, masks/m2.png and 1 "
        "more have the values 0, 1, 255; with --mask-mode auto masks must all be binary "
        "(0/255 or 0/1) or class indices below 64. If 255 marks unlabelled pixels, give "
        "--ignore-index 255"),
    "gray levels as classes": (
        _train_on((FOUR * 85).astype(np.uint8)),
        "keras-unet train: error: the masks masks/m0.png, masks/m1.png, masks/m2.png and 1 "
        "more have the values 0, 85, 170, 255; with --mask-mode auto masks must all be binary "
        "(0/255 or 0/1) or class indices below 64. If each value is a class, give --palette "
        "'0=0;85=1;170=2;255=3'"),
    "colour masks without --palette": (
        lambda p: ["train", "--images", "images", "--masks", "masks", *SMALL] if _colour_masks(p)
        else None,
        "keras-unet train: error: the mask masks/m0.png is colour-coded; give --palette "
        "R,G,B=CLASS;... (each colour's class index)"),
    "a colour not in --palette": (
        lambda p: ["train", "--images", "images", "--masks", "masks", *SMALL, "--palette",
                   "0,0,0=0;255,0,0=1"] if _colour_masks(p) else None,
        "keras-unet train: error: the mask masks/m0.png has colours that are not in --palette: "
        "(0, 255, 0)"),
    "--palette with --mask-mode binary": (
        _train_with("--palette", "0=0;255=1", "--mask-mode", "binary"),
        "keras-unet train: error: --palette reads colour-coded masks as classes; it does not "
        "go with --mask-mode binary"),
    "--ignore-index with a dataset": (
        lambda p: ["train", "--dataset", "synthetic", "--ignore-index", "255"],
        "keras-unet train: error: give either --dataset or --images and --masks (and their "
        "--mask-threshold, --palette, --ignore-index), not both"),
    "--output in a file": (
        _train_with("--output", "images/m0.png/unet.keras"),
        "keras-unet train: error: --output images/m0.png/unet.keras cannot be written: "
        "images/m0.png is a file; give a path in a folder you can write to"),
    "--output where no file can be made": (  # /proc: refused to root too
        _train_with("--output", "/proc/unet.keras"),
        "keras-unet train: error: --output /proc/unet.keras cannot be written: /proc takes no "
        "new file (No such file or directory); give a path in a folder you can write to"),
    "--workdir a file": (
        _train_with("--workdir", "images/m0.png"),
        "keras-unet train: error: --workdir images/m0.png cannot be written: images/m0.png is "
        "a file; give a path in a folder you can write to"),
    "a backup of a run with other options": (
        _backup_of_another_run,
        "keras-unet train: error: the backup in unet_training belongs to a run with other "
        "options (--filters 4 then, 8 now): give the same options to resume it, another "
        "--workdir, or delete unet_training to start again"),
    "binary predictions against class truths": (
        _evaluate(CELLS * 255, FOUR),
        "keras-unet evaluate: error: predicted/m0.png against truth/m0.png: the truth holds "
        "class indices (0, 1, 2, 3) but prediction is a binary mask (float32 in [0, 1]): score "
        "a binary prediction against binary truths and class indices against class indices"),
    "class predictions against binary truths": (
        _evaluate(FOUR, CELLS * 255),
        "keras-unet evaluate: error: predicted/m0.png against truth/m0.png: the truth is a "
        "binary mask (float32 in [0, 1]) but prediction holds class indices (0, 1, 2, 3): "
        "score a binary prediction against binary truths and class indices against class "
        "indices"),
    "evaluate --classes below the values": (
        lambda p: _evaluate(FOUR, FOUR)(p) + ["--classes", "3"],
        "keras-unet evaluate: error: the masks predicted/m0.png, truth/m0.png, predicted/m1.png "
        "and 5 more have the values 0, 1, 2, 3, but --classes 3 makes the classes 0 to 2: the "
        "pixels of 3 (25% of them) would be left out of training and scores. Pass --classes 4"),
    "evaluate JPEG-like masks": (
        _evaluate(np.where(CELLS > 0, 250, 3).astype(np.uint8), CELLS * 255),
        "keras-unet evaluate: error: the mask predicted/m0.png has the values 3, 250; expected "
        "binary values (0/255 or 0/1) or class indices below 64. keras-unet evaluate reads "
        "masks of 0/255 or 0/1 and masks of class indices 0, 1, 2, ...: save them so (as PNG, "
        "not JPEG)"),
    # the library's advice, in the command's options (see in_option_names)
    "--mask-threshold at the top value": (
        _train_with("--mask-threshold", "255"),
        "keras-unet train: error: --mask-threshold 255 reads every pixel of the mask "
        "masks/m0.png as 0 (it holds 0, 255): leave it out for 0/1 masks, else give one below 255 "
        "(e.g. 127 for 8 bits)"),
    "--mask-threshold on masks of 0 and 1": (
        lambda p: _train_on(CELLS)(p) + ["--mask-threshold", "127"],
        "keras-unet train: error: --mask-threshold 127 reads every pixel of the mask "
        "masks/m0.png as 0 (it holds 0, 1): leave it out for 0/1 masks, else give one below 255 "
        "(e.g. 127 for 8 bits)"),
    "--mask-threshold and --ignore-index": (
        _train_with("--mask-threshold", "127", "--ignore-index", "255"),
        "keras-unet train: error: --mask-threshold reads binary masks; it does not go with "
        "--ignore-index"),
    "--mask-threshold with --mask-mode multiclass": (
        _train_with("--mask-threshold", "127", "--mask-mode", "multiclass"),
        "keras-unet train: error: --mask-threshold reads binary masks; it does not go with "
        "--mask-mode multiclass"),
    "--ignore-index with --mask-mode binary": (
        _train_with("--ignore-index", "255", "--mask-mode", "binary"),
        "keras-unet train: error: --ignore-index keeps unlabelled pixels in class-index masks; "
        "it does not go with --mask-mode binary: use --mask-mode multiclass"),
    "--ignore-index among the classes": (
        lambda p: _train_on(FOUR)(p) + ["--ignore-index", "2"],
        "keras-unet train: error: --ignore-index 2 is not above the classes 0 to 3: the "
        "ignored value must be above every class (e.g. --ignore-index 255)"),
    "--ignore-index one of --classes": (
        lambda p: _train_on(FOUR)(p) + ["--ignore-index", "15", "--classes", "21"],
        "keras-unet train: error: --ignore-index 15 is not above the classes 0 to 20: the "
        "ignored value must be above every class (e.g. --ignore-index 255)"),
    "--classes 1 with class masks": (
        lambda p: _train_on(FOUR)(p) + ["--classes", "1"],
        "keras-unet train: error: --classes 1, but the masks hold class indices: class masks "
        "have 2 classes or more (binary masks need no --classes)"),
    "--classes 3 with binary masks": (
        _train_with("--classes", "3"),
        "keras-unet train: error: --classes 3, but the masks are binary (two values, read as 0 "
        "and 1): give masks of class indices, or leave --classes out"),
    "evaluate colour masks": (
        lambda p: (_colour_masks(p), _folders(p, CELLS * 255, "truth"),
                   ["evaluate", "masks", "truth"])[-1],
        "keras-unet evaluate: error: the mask masks/m0.png is colour-coded; save it as a gray "
        "mask of class indices: keras-unet evaluate takes no colour palette"),
}
# Python's words that the command's messages never hold
PYTHON = re.compile(r"\b(mask_mode|threshold|ignore_index|palette|n_classes|tile|batch_size|"
                    r"images_dir|masks_dir|data_dir|learning_rate)=|\[\.\.\., ")


def _command(folder, arguments, **environment):
    """The epochs and steps asked for; ``environment``: more variables."""
    return run_command(*arguments, cwd=folder, env=dict(os.environ, **environment), fast=False)


@pytest.mark.parametrize("case", sorted(COMMAND_CASES))
def test_command_stops_with_one_line(tmp_path, case):
    make, line = COMMAND_CASES[case]
    done = _command(tmp_path, make(tmp_path))
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [line], done.stderr[-3000:]  # one line, this one
    assert done.returncode == 2
    assert not PYTHON.search(line)
    assert not list(tmp_path.glob("*.keras"))  # no model that looks like a result


def _palette_masks(folder):
    _colour_masks(folder)
    return ["train", "--images", "images", "--masks", "masks", *SMALL, "--palette",
            "0,0,0=0;255,0,0=1;0,255,0=2"]


def _empty_truths(folder):
    _evaluate(CELLS * 255, np.zeros((32, 32), np.uint8))(folder)
    save_image(folder / "predicted" / "m0.png", np.zeros((32, 32), np.uint8))  # empty, rightly
    return ["evaluate", "predicted", "truth"]


EMPTY_WARNING = ("keras-unet train: warning: every mask is all background (4 masks, no pixel "
                 "above 0): a model trained on them learns to predict nothing; check the masks "
                 "and --mask-mode")
COMMAND_WORKS = {  # name: (make the folder, stderr's lines, a line stdout holds)
    "all-background masks train with one warning": (
        _train_on(np.zeros((32, 32), np.uint8)), [EMPTY_WARNING],
        "model saved to unet.keras"),
    "21 classes of which the masks use 0 and 15": (
        lambda p: _train_on(CELLS * 15)(p) + ["--classes", "21"], [],
        "tiles 32x32, 21 output channel(s)"),
    "a void border with --ignore-index": (
        lambda p: _train_on(np.where(np.arange(32)[:, None] < 2, 255, CELLS).astype(np.uint8))(p)
        + ["--ignore-index", "255"], [], "tiles 32x32, 2 output channel(s)"),
    "colour masks with --palette": (
        _palette_masks, [], "tiles 32x32, 3 output channel(s)"),
    "a tile larger than the images is made smaller, aloud": (
        _train_with("--tile", "64"), [],
        "tile 64 is larger than the smallest image: using tile 32"),
    "empty truths score without NaN or a warning": (
        _empty_truths, [],  # m0 empty and rightly so: 1; the others 0
        "mean         0.2500       0.2500       0.2725       0.2500"),
}


@pytest.mark.parametrize("case", sorted(COMMAND_WORKS))
def test_command_does_what_was_meant(tmp_path, case):
    make, stderr, shown = COMMAND_WORKS[case]
    done = _command(tmp_path, make(tmp_path), PYTHONWARNINGS="error::RuntimeWarning")
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines() == stderr, done.stderr[-3000:]
    assert done.returncode == 0
    assert any(shown in line for line in done.stdout.splitlines()), done.stdout
    assert "nan" not in done.stdout
