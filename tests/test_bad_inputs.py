"""A catalogue of bad inputs a user will meet, and what the package answers.

Each is a clear error naming the file or the argument and the problem, or is handled
as documented (16-bit and RGBA images, gray mixed with RGB).
"""

import re

import numpy as np
import pytest
from test_datasets import BINARY, CLASSES, GRAY, RGB, _save  # the image-file writers

from keras_unet.data import make_dataset
from keras_unet.datasets import from_folder

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
