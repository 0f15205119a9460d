"""A catalogue of bad inputs a user will meet, and what the package answers.

Each is a clear error naming the file or the argument and the problem, or is handled
as documented (16-bit and RGBA images, gray mixed with RGB).
"""

import re

import numpy as np
import pytest
from PIL import Image
from test_datasets import BINARY, CLASSES, GRAY, RGB, _save  # the image-file writers

from keras_unet.data import make_dataset
from keras_unet.datasets import from_folder, mask_classes
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
        "masks[1]: the mask contains NaN"),
    "soft mask values": (
        dict(images=IMAGES, masks=MASKS * 0.5), "masks[0]: a float mask is binary and must hold only 0 and 1; found [0.0, 0.5]"),
    "0/255 mask as uint8": (
        dict(images=IMAGES, masks=(MASKS * 255).astype(np.uint8)),
        "masks[0]: the mask holds 0 and 255: for a binary mask pass (mask > 0)"),
    "negative class index": (
        dict(images=IMAGES, masks=np.full((3, 32, 32), -1)), "masks[0]: class indices must be >= 0; found -1"),
    "strings instead of pixels": (
        dict(images=np.full((3, 32, 32), "x"), masks=MASKS),
        "images[0] has <U1 pixels; expected 8-bit, 16-bit or float in [0, 1]"),
    "float image in 0..255": (
        dict(images=IMAGES * 255, masks=MASKS),
        "images[0] is a float image with values in [0.0"),
    "one-hot mask": (
        dict(images=IMAGES, masks=np.zeros((3, 32, 32, 3), np.float32)),
        "masks[0]: a mask must be (height, width) or (height, width, 1); got shape (32, 32, 3)"),
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
        dict(images=IMAGES, masks=MASKS, batch_size=0), "batch_size must be a positive integer; got 0"),
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
    _save(folder / "images" / f"{name}.png", image)
    _save(folder / "masks" / f"{name}.png", mask)


def _unpartnered(folder):
    _pair(folder)
    _save(folder / "images" / "b.png", GRAY)
    _save(folder / "masks" / "c.png", GRAY)


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
    _save(folder / "images" / "a.png", GRAY)
    blocks = np.kron(BINARY, np.ones((4, 4), np.uint8))[:6, :8] * 255
    _save(folder / "masks" / "a.jpg", blocks, quality=50)  # lossy: values near 0 and 255


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
        lambda p: (_pair(p), _save(p / "masks" / "a_mask.png", BINARY)),
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
    _save(tmp_path / "images" / "a.tif", deep)
    _save(tmp_path / "masks" / "a.png", BINARY * 255)
    split = from_folder(tmp_path / "images", tmp_path / "masks")
    np.testing.assert_allclose(split.images[0, ..., 0], deep / 65535, atol=1e-6)


def test_rgba_with_transparency_is_refused_by_name(tmp_path):
    rgba = np.dstack([RGB, np.full((6, 8), 255, np.uint8)])
    rgba[0, 0, 3] = 0  # one transparent pixel: what colour is it?
    _pair(tmp_path, image=rgba)
    with pytest.raises(ValueError, match=r"a\.png"):
        from_folder(tmp_path / "images", tmp_path / "masks")


# ------------------------------------ library: mask values that would read wrong
# Each would once have read as something that looks fine and is not (256 classes from a
# JPEG mask, a void border as class 255, an animated GIF's first frame); now it stops
# with one line saying what is wrong and what to pass. Messages are exact.

def _void(folder):
    void = BINARY.copy()
    void[0] = 255  # an unlabelled border
    _pair(folder, mask=void)


def _animated(folder):
    _save(folder / "images" / "a.png", GRAY)
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
        ["the mask ", A_PNG, " holds 0 and 1 only, which threshold=127 reads as all 0: it is "
                             "a binary mask already; read it without threshold="]),
    "threshold at the top value": (
        _pair, dict(threshold=255),
        ["threshold=255 is not below 255, the top value of the mask ", A_PNG,
         ": every pixel would read as 0 (for 8-bit masks, e.g. threshold=127)"]),
    "negative threshold": (
        _pair, dict(threshold=-1),
        ["threshold must be a number >= 0 in the masks' own scale (e.g. 127 for 8-bit masks); "
         "got -1"]),
    "threshold with class masks": (
        _pair, dict(threshold=127, mask_mode="multiclass"),
        ["threshold= reads binary masks; it does not go with mask_mode='multiclass'"]),
    "threshold and ignore_index": (
        _pair, dict(threshold=127, ignore_index=255),
        ["give threshold= (binary masks) or ignore_index= (class masks), not both"]),
    "ignore_index with binary masks": (
        _void, dict(ignore_index=255, mask_mode="binary"),
        ["ignore_index= keeps unlabelled pixels in class-index masks; it does not go with "
         "mask_mode='binary': use mask_mode='multiclass'"]),
    "ignore_index among the classes": (
        lambda p: _pair(p, mask=CLASSES), dict(ignore_index=2),
        ["ignore_index=2 is below the class 3 of the masks: the ignored value must be above "
         "every class (e.g. ignore_index=255)"]),
    "ignore_index not an integer": (
        _void, dict(ignore_index="255"),
        ["ignore_index must be an integer >= 0, the value of unlabelled pixels (e.g. 255); "
         "got '255'"]),
    "animated GIF mask": (
        _animated, {},
        [("masks", "a.gif"), " has 2 frames (an animated or multi-page image); expected one "
                             "image"]),
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
        "truth must be a binary mask of 0 and 1; found 2, 3 (class indices? pass n_classes=)"),
    "class masks counted with a void border": (
        lambda: mask_classes([CLASSES, np.full((6, 8), 255)]),
        "the mask masks[1] has the values 0, 1, 2, 3, 255, which as class indices make 256 "
        "classes, 251 of them never used. If 255 marks unlabelled pixels, pass "
        "ignore_index=255"),
    "void border in a weight map": (
        lambda: border_weight_map(np.where(np.arange(8) < 1, 255, BINARY)),
        "labels holds 0, 1 and 255, which would read as two objects numbered 1 and 255; if "
        "255 marks unlabelled pixels, pass ignore_index=255, else a binary mask (labels == 1)"),
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
            f"{tmp_path / 'masks'} mixes two binary encodings: 1 mask 0/1 (a.png) and 1 0/255 "
            f"(b.png); all are read as binary masks of 0 and 1")):
        split = from_folder(tmp_path / "images", tmp_path / "masks")
    np.testing.assert_array_equal(split.masks[..., 0], np.stack([BINARY, BINARY]))


def test_empty_truth_scores_without_nan():
    empty = np.zeros((6, 8))
    scores = isbi_scores(empty, empty)
    assert (scores["V_rand"], scores["V_info"], scores["pixel_error"]) == (1.0, 1.0, 0.0)
    assert isbi_scores(BINARY * 1.0, empty, thresholds=[0.5])["V_rand"] == 0.0
