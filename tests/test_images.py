"""keras_unet.images: reading image and mask files (every encoding), the folder reader,
the mask checks and the whole-file writers."""

import os
import re
import warnings

import numpy as np
import pytest
import tifffile
from PIL import Image

from keras_unet import images

from test_datasets import umask  # noqa: F401  (a fixture: the process's umask, per test)


# ----------------------------------------------------------- whole-file writers


def test_write_atomically_keeps_the_umask_mode(tmp_path, umask):
    path = images.write_atomically(tmp_path / "new" / "scores.txt", lambda f: f.write(b"1"))
    plain = tmp_path / "plain.txt"
    plain.write_bytes(b"1")
    expected = 0o666 & ~umask  # 0o644 under umask 022, 0o664 under 002
    assert oct(path.stat().st_mode & 0o777) == oct(expected) == oct(plain.stat().st_mode & 0o777)
    assert os.listdir(path.parent) == ["scores.txt"]


def test_write_atomically_failure_leaves_nothing(tmp_path):
    def broken(file):
        file.write(b"half")
        raise RuntimeError("disk full")

    (tmp_path / "kept.txt").write_bytes(b"old")
    with pytest.raises(RuntimeError, match="disk full"):
        images.write_atomically(tmp_path / "kept.txt", broken)
    assert os.listdir(tmp_path) == ["kept.txt"] and (tmp_path / "kept.txt").read_bytes() == b"old"


@pytest.mark.skipif(os.name == "nt", reason="no fcntl: nothing is locked on Windows")
def test_locked_waits_refuses_and_removes(tmp_path):
    """The one file lock: fetch waits on it, a prediction run refuses a held one."""
    lock = tmp_path / "made" / "run.lock"
    with images.locked(lock):
        assert lock.is_file()
        with pytest.raises(BlockingIOError):
            with images.locked(lock, wait=False):
                pass
    with images.locked(lock, wait=False):  # released: free again, and the file stays
        pass
    assert lock.is_file()
    with images.locked(lock, wait=False, remove=True):
        assert lock.is_file()
    assert not lock.exists()


# --------------------------------------------------------------------- from_folder


def save_image(path, array, **kwargs):
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix in (".tif", ".tiff"):
        tifffile.imwrite(path, array, **kwargs)
    else:
        Image.fromarray(array).save(path, **kwargs)
    return path


RNG = np.random.default_rng(0)
GRAY = RNG.integers(0, 256, (6, 8), np.uint8)
RGB = RNG.integers(0, 256, (6, 8, 3), np.uint8)
BINARY = (RNG.random((6, 8)) > 0.5).astype(np.uint8)
CLASSES = RNG.integers(0, 4, (6, 8)).astype(np.uint8)


@pytest.mark.parametrize("scale", [255, 1])
def test_from_folder_binary_masks(tmp_path, scale):
    save_image(tmp_path / "images" / "a.png", GRAY)
    save_image(tmp_path / "masks" / "a.png", BINARY * scale)
    split = images.from_folder(tmp_path / "images", tmp_path / "masks")
    assert split.images.shape == split.masks.shape == (1, 6, 8, 1)
    assert split.masks.dtype == np.float32 and split.names == ["a"] and split.fov is None
    np.testing.assert_array_equal(split.masks[0, ..., 0], BINARY)
    np.testing.assert_allclose(split.images[0, ..., 0], GRAY / 255, atol=1e-7)


def test_from_folder_class_masks(tmp_path):
    for name in ("a", "b"):
        save_image(tmp_path / "images" / f"{name}.png", RGB)
    save_image(tmp_path / "masks" / "a.png", CLASSES)
    save_image(tmp_path / "masks" / "b.png", BINARY)  # 0/1 alone, but the folder has 0..3
    split = images.from_folder(tmp_path / "images", tmp_path / "masks")
    assert split.masks.dtype == np.int32 and split.masks.shape == (2, 6, 8, 1)
    np.testing.assert_array_equal(split.masks[0, ..., 0], CLASSES)
    np.testing.assert_array_equal(split.masks[1, ..., 0], BINARY)
    assert split.images.shape == (2, 6, 8, 3)


def test_from_folder_palette_masks(tmp_path):
    palette = {(0, 0, 0): 0, (255, 0, 0): 1, (0, 128, 255): 2}
    colours = np.array(list(palette), np.uint8)
    save_image(tmp_path / "images" / "a.jpg", RGB, quality=95)
    save_image(tmp_path / "masks" / "a.png", colours[CLASSES % 3])
    split = images.from_folder(tmp_path / "images", tmp_path / "masks", palette=palette)
    np.testing.assert_array_equal(split.masks[0, ..., 0], CLASSES % 3)
    assert split.masks.dtype == np.int32

    stray = np.where(CLASSES[..., None] == 3, [9, 9, 9], colours[CLASSES % 3])
    save_image(tmp_path / "masks" / "a.png", stray.astype(np.uint8))
    message = r"a\.png has colours that are not in palette: \(9, 9, 9\)"
    with pytest.raises(ValueError, match=message):
        images.from_folder(tmp_path / "images", tmp_path / "masks", palette=palette)
    with pytest.raises(ValueError, match="colour-coded; pass mask_mode='palette'"):
        images.from_folder(tmp_path / "images", tmp_path / "masks")


def test_from_folder_indexed_png_masks(tmp_path):
    # PASCAL VOC style: palette PNG, the index is the class and the colours are for show
    save_image(tmp_path / "images" / "a.png", RGB)
    mask = Image.fromarray(CLASSES, "P")
    mask.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0] + [0] * 744)
    (tmp_path / "masks").mkdir()
    mask.save(tmp_path / "masks" / "a.png")
    split = images.from_folder(tmp_path / "images", tmp_path / "masks")
    np.testing.assert_array_equal(split.masks[0, ..., 0], CLASSES)


def test_from_folder_16_bit_and_float_tiff(tmp_path):
    deep = RNG.integers(0, 65536, (6, 8), np.uint16)
    save_image(tmp_path / "images" / "a.tif", deep)
    save_image(tmp_path / "images" / "b.tiff", (RGB.astype(np.uint16) * 257))
    save_image(tmp_path / "images" / "c.tif", GRAY.astype(np.float32) / 255)
    for name in "abc":
        save_image(tmp_path / "masks" / f"{name}.png", BINARY * 255)
    split = images.from_folder(tmp_path / "images", tmp_path / "masks")
    assert split.images.shape == (3, 6, 8, 3)  # the gray ones repeated to RGB
    np.testing.assert_allclose(split.images[0, ..., 1], deep / 65535, atol=1e-7)
    np.testing.assert_allclose(split.images[1], RGB / 255, atol=1e-7)
    np.testing.assert_allclose(split.images[2, ..., 0], GRAY / 255, atol=1e-7)

    nan = GRAY.astype(np.float32) / 255
    nan[2, 3] = np.nan
    save_image(tmp_path / "images" / "c.tif", nan)
    with pytest.raises(ValueError, match=r"c\.tif has NaN pixels \(1 of them\)"):
        images.from_folder(tmp_path / "images", tmp_path / "masks")
    save_image(tmp_path / "images" / "c.tif", GRAY.astype(np.float32))
    message = r"c\.tif has float32 pixels in \[4, 248\]; expected 8-bit, 16-bit or float pixels in"
    with pytest.raises(ValueError, match=message):
        images.from_folder(tmp_path / "images", tmp_path / "masks")


def test_from_folder_rgba_images(tmp_path):
    rgba = np.dstack([RGB, np.full((6, 8), 255, np.uint8)])
    save_image(tmp_path / "images" / "a.png", rgba)
    save_image(tmp_path / "masks" / "a.png", BINARY * 255)
    split = images.from_folder(tmp_path / "images", tmp_path / "masks")
    np.testing.assert_allclose(split.images[0], RGB / 255, atol=1e-7)
    rgba[0, 0, 3] = 10
    save_image(tmp_path / "images" / "a.png", rgba)
    with pytest.raises(ValueError, match=r"a\.png has an alpha channel with 1 transparent pixels"):
        images.from_folder(tmp_path / "images", tmp_path / "masks")


def test_from_folder_jpeg_with_mask_suffix_and_sizes(tmp_path):
    save_image(tmp_path / "images" / "cat.jpg", RGB, quality=95)
    save_image(tmp_path / "images" / "dog.jpeg", RNG.integers(0, 256, (10, 4, 3), np.uint8))
    save_image(tmp_path / "masks" / "cat_mask.png", BINARY * 255)
    save_image(tmp_path / "masks" / "dog.gif", np.zeros((10, 4), np.uint8))
    (tmp_path / "masks" / ".DS_Store").write_bytes(b"junk")  # hidden: skipped
    split = images.from_folder(tmp_path / "images", tmp_path / "masks")
    assert split.names == ["cat", "dog"]
    assert isinstance(split.images, list) and isinstance(split.masks, list)
    assert [i.shape for i in split.images] == [(6, 8, 3), (10, 4, 3)]
    assert [m.shape for m in split.masks] == [(6, 8, 1), (10, 4, 1)]
    assert abs(split.images[0].mean() - RGB.mean() / 255) < 0.01  # JPEG is lossy


def test_read_image_modes(tmp_path):
    cmyk = save_image(tmp_path / "cmyk.jpg", RGB, quality=100)
    Image.open(cmyk).convert("CMYK").save(cmyk, quality=100)
    assert images.read_image(cmyk).shape == (6, 8, 3)
    palette = tmp_path / "palette.png"
    Image.fromarray(RGB).convert("P").save(palette)
    assert images.read_image(palette).shape == (6, 8, 3)
    two_bit = tmp_path / "bits.png"
    Image.fromarray(BINARY.astype(bool)).save(two_bit)
    np.testing.assert_array_equal(images.read_image(two_bit)[..., 0], BINARY)
    deep = save_image(tmp_path / "deep.png", (GRAY.astype(np.uint16) * 257))
    np.testing.assert_allclose(images.read_image(deep)[..., 0], GRAY / 255, atol=1e-7)
    lzw = tmp_path / "lzw.tif"  # tifffile needs imagecodecs for LZW: PIL reads it
    Image.fromarray(RGB).save(lzw, compression="tiff_lzw")
    np.testing.assert_allclose(images.read_image(lzw), RGB / 255, atol=1e-7)
    stack = save_image(tmp_path / "stack.tif", np.zeros((3, 6, 8), np.uint8), photometric="minisblack")
    with pytest.raises(ValueError, match=r"stack\.tif has 3 frames \(animated or multi-page"):
        images.read_image(stack)


# ----------------------------------------------------- masks that would read wrong


def _folder(tmp_path, masks, suffix=".png", **kwargs):
    """An images/ and masks/ folder with one gray image per mask, named a, b, c, ..."""
    for name, mask in zip("abcdefgh", masks):
        save_image(tmp_path / "images" / f"{name}.png", np.zeros(mask.shape[:2], np.uint8))
        save_image(tmp_path / "masks" / f"{name}{suffix}", mask, **kwargs)
    return tmp_path / "images", tmp_path / "masks"


def _disc(size=64):
    yy, xx = np.mgrid[:size, :size]
    return (((yy - 30) ** 2 + (xx - 28) ** 2) < 300).astype(np.uint8)


def test_threshold_reads_a_jpeg_mask_as_binary(tmp_path):
    image_dir, masks = _folder(tmp_path, [_disc() * 255], ".jpg", quality=75)
    noisy = np.asarray(Image.open(masks / "a.jpg"))
    assert len(np.unique(noisy)) > 10  # JPEG: values near 0 and 255, not 0/255
    with pytest.raises(images.MaskValuesError, match="pass threshold=127") as error:
        images.from_folder(image_dir, masks)
    assert error.value.fix == {"threshold": 127} and error.value.files == [masks / "a.jpg"]
    split = images.from_folder(image_dir, masks, threshold=127)
    assert split.masks.dtype == np.float32
    np.testing.assert_array_equal(split.masks[0, ..., 0], noisy > 127)
    assert np.mean(split.masks[0, ..., 0] != _disc()) < 0.01  # the disc, edges aside
    mask = images.read_mask(masks / "a.jpg", "binary", threshold=127)
    np.testing.assert_array_equal(mask, split.masks[0])
    # 16-bit: the threshold is in the file's own scale
    deep = save_image(tmp_path / "deep.png", _disc().astype(np.uint16) * 60000 + 300)
    assert images.read_mask(deep, threshold=30000).sum() == _disc().sum()


def test_threshold_refuses_what_would_read_as_all_background(tmp_path):
    image_dir, masks = _folder(tmp_path, [BINARY])  # 0/1: binary already
    with pytest.raises(ValueError, match=r"threshold=127 reads every pixel of the mask .*a\.png as "
                                         r"0 \(it holds 0, 1\): leave it out for 0/1 masks"):
        images.from_folder(image_dir, masks, threshold=127)
    assert images.from_folder(image_dir, masks, threshold=0).masks.sum() == BINARY.sum()
    with pytest.raises(ValueError, match=r"threshold=255 reads every pixel .*give one below 255"):
        images.read_mask(masks / "a.png", threshold=255)
    for kwargs, message in [
        (dict(threshold=-1), "threshold must be a finite number >= 0; got -1"),
        (dict(threshold="127"), "threshold must be a finite number >= 0"),
        (dict(threshold=True), "threshold must be a finite number >= 0"),
        (dict(threshold=127, ignore_index=255),
         "threshold= reads binary masks; it does not go with ignore_index="),
        (dict(threshold=127, mask_mode="multiclass"),
         "threshold= reads binary masks; it does not go with mask_mode='multiclass'"),
        (dict(threshold=127, palette={(0, 0, 0): 0}),
         "threshold= reads binary masks; it does not go with palette="),
    ]:
        with pytest.raises(ValueError, match=re.escape(message)):
            images.from_folder(image_dir, masks, **kwargs)


def test_ignore_index_keeps_void_pixels_out_of_the_classes(tmp_path):
    void = CLASSES.copy() % 2
    void[0] = 255  # an unlabelled border, as PASCAL VOC's
    image_dir, masks = _folder(tmp_path, [void, BINARY])
    for mode in ("auto", "multiclass"):  # without ignore_index: refused, with the advice
        with pytest.raises(images.MaskValuesError, match=r"a\.png has the values 0, 1, "
                           r"255.*If 255 marks unlabelled pixels, pass ignore_index=255$") as e:
            images.from_folder(image_dir, masks, mask_mode=mode)
        assert e.value.fix == {"ignore_index": 255} and e.value.files == [masks / "a.png"]
    split = images.from_folder(image_dir, masks, ignore_index=255)
    assert split.masks.dtype == np.int32
    np.testing.assert_array_equal(split.masks[0, ..., 0], void)
    assert images.mask_classes(split.masks, ignore_index=255) == 2
    np.testing.assert_array_equal(images.read_mask(masks / "a.png", ignore_index=255)[..., 0],
                                  void)
    with pytest.raises(ValueError, match="ignore_index= keeps unlabelled pixels in class-index "
                                         "masks; it does not go with mask_mode='binary'"):
        images.read_mask(masks / "a.png", "binary", ignore_index=255)
    with pytest.raises(ValueError, match=r"ignore_index must be an integer >= 0.*got 2\.5"):
        images.from_folder(image_dir, masks, ignore_index=2.5)


def test_mask_classes_counts_dense_values_and_refuses_gaps():
    assert images.mask_classes([np.array([0, 1, 2]), np.array([[3, 0]])]) == 4
    assert images.mask_classes(np.array([[0, 1, 2, 4]])) == 5  # one index unused: fine
    assert images.mask_classes([np.array([0, 2])]) == 3
    assert images.mask_classes([np.zeros(3, int)]) == 2  # a model needs two outputs
    assert images.mask_classes([np.array([True, False])]) == 2
    cases = [  # values -> (what the message advises, fix)
        ([0, 3], "They look like binary masks of 0 and 3: pass threshold=1",
         {"threshold": 1}),
        ([0, 85, 170, 255], "If each value is a class, number them with palette={(0, 0, 0): 0, "
                            "(85, 85, 85): 1, (170, 170, 170): 2, (255, 255, 255): 3}",
         {"palette": {(0, 0, 0): 0, (85, 85, 85): 1, (170, 170, 170): 2, (255, 255, 255): 3}}),
        ([0, 255], "They are binary masks: pass mask_mode='binary'", {"mask_mode": "binary"}),
        ([0, 128], "They look like binary masks of 0 and 128: pass threshold=64 to read the "
                   "pixels above 64 as 1", {"threshold": 64}),
        ([0, 1, 2, 255], "If 255 marks unlabelled pixels, pass ignore_index=255",
         {"ignore_index": 255}),
        (list(range(13)) + list(range(240, 256)) + [0] * 500 + [255] * 500,
         "They look like binary masks with in-between values at the edges (JPEG, smoothing): "
         "pass threshold=127", {"threshold": 127}),
        (list(range(0, 200, 10)), "Renumber the classes 0, 1, 2, ... in the files", {}),
    ]
    for values, advice, fix in cases:
        with pytest.raises(images.MaskValuesError, match=re.escape(advice)) as error:
            images.mask_classes([np.zeros(4, np.uint8), np.array(values)], names=["a", "b"])
        assert error.value.fix == fix and error.value.files == ["b"]
        assert error.value.values == sorted(set(values) | {0})
    with pytest.raises(images.MaskValuesError, match=re.escape(
            "the mask masks[0] has the values 0, 1, 255, which as class indices make 256 "
            "classes, 253 of them never used.")):
        images.mask_classes([np.array([0, 1, 255])])
    with pytest.raises(ValueError, match=re.escape(
            "masks[1] has float32 values; class indices are integers (a float mask is binary: "
            "read it with mask_mode='binary')")):
        images.mask_classes([np.array([0, 1]), np.array([0.0, 1.0], np.float32)])
    with pytest.raises(ValueError, match=re.escape("masks[0]: class indices must be >= 0; "
                                                   "found -1")):
        images.mask_classes([np.array([-1, 0, 1])])
    with pytest.raises(ValueError, match=re.escape(
            "ignore_index=1 is not above the classes 0 to 2: the ignored value must be above "
            "every class (e.g. ignore_index=255)")):
        images.mask_classes([np.array([0, 1, 2])], ignore_index=1)
    with pytest.raises(ValueError, match=re.escape("every pixel of the masks is "
                                                   "ignore_index=255: no class")):
        images.mask_classes([np.full(3, 255)], ignore_index=255)


def test_mask_classes_n_classes_takes_sparse_values_and_refuses_values_above():
    # 21 classes, of which these masks use 0 and 15: sparse, but said by n_classes
    assert images.mask_classes([np.array([0, 15, 15])], n_classes=21) == 21
    assert images.mask_classes([np.array([0, 1, 255])], 255, n_classes=3) == 3
    four = np.array([0] * 7 + [2] * 5 + [3] * 4)  # with a's 4 zeros: 45% of the pixels above 1
    with pytest.raises(ValueError, match="^" + re.escape(
            "the mask b has the values 0, 2, 3, but n_classes=2 makes the classes 0 and 1: "
            "the pixels of 2, 3 (45% of them) would be left out of training and scores. "
            "Pass n_classes=4") + "$"):
        images.mask_classes([np.zeros(4, int), four], names=["a", "b"], n_classes=2)
    with pytest.raises(ValueError, match=re.escape(
            "makes the classes 0 to 2: the pixels of 3 (0.5% of them) would be left out of "
            "training and scores. Pass n_classes=4, or ignore_index=3 if 3 marks unlabelled "
            "pixels")):
        images.mask_classes([np.array([0] * 199 + [3])], n_classes=3)
    with pytest.raises(ValueError, match=re.escape(
            "ignore_index=15 is not above the classes 0 to 20")):
        images.mask_classes([np.array([0, 1])], 15, n_classes=21)
    for bad in (1, 2.0, True):
        with pytest.raises(ValueError, match=re.escape(
                f"n_classes must be an integer >= 2; got {bad!r}")):
            images.mask_classes([np.array([0, 1])], n_classes=bad)


def test_from_folder_n_classes(tmp_path):
    sparse = (CLASSES > 1).astype(np.uint8) * 15  # 0 and 15 of 21 classes
    image_dir, masks = _folder(tmp_path, [sparse, sparse])
    with pytest.raises(images.MaskValuesError):
        images.from_folder(image_dir, masks)
    split = images.from_folder(image_dir, masks, mask_mode="multiclass", n_classes=21)
    assert np.unique(split.masks).tolist() == [0, 15]
    with pytest.raises(ValueError, match=re.escape(
            f"the masks {masks / 'a.png'}, {masks / 'b.png'} have the values 0, 15, but "
            f"n_classes=8 makes the classes 0 to 7")):
        images.from_folder(image_dir, masks, mask_mode="multiclass", n_classes=8)


def test_from_folder_checks_class_masks_as_a_whole(tmp_path):
    sparse = (CLASSES > 1).astype(np.uint8) * 50  # 0 and 50: 51 classes, 49 never used
    image_dir, masks = _folder(tmp_path, [CLASSES, sparse, CLASSES])
    with pytest.raises(images.MaskValuesError, match=re.escape(
            f"the mask {masks / 'b.png'} has the values 0, 1, 2, 3, 50, which as class indices "
            f"make 51 classes, 46 of them never used. If 50 marks unlabelled pixels, pass "
            f"ignore_index=50")):
        images.from_folder(image_dir, masks)
    save_image(masks / "b.png", CLASSES)  # each mask alone may use few classes: the folder counts
    save_image(masks / "c.png", (CLASSES == 3).astype(np.uint8) * 3)  # 0 and 3 only
    assert images.from_folder(image_dir, masks).masks.dtype == np.int32


def test_folder_of_0_1_and_0_255_masks_reads_binary_and_says_so(tmp_path):
    image_dir, masks = _folder(tmp_path, [BINARY, BINARY * 255, BINARY, BINARY * 255, BINARY,
                                       BINARY, np.zeros((6, 8), np.uint8)])
    with pytest.warns(UserWarning) as record:
        split = images.from_folder(image_dir, masks)
    assert [str(w.message) for w in record] == [
        f"{masks} mixes 4 masks of 0/1 (a.png, c.png, e.png) and 2 of 0/255 (b.png, d.png): "
        f"all read as 0/1"]
    assert split.masks.dtype == np.float32
    np.testing.assert_array_equal(split.masks[:6, ..., 0], np.stack([BINARY] * 6))
    with pytest.warns(UserWarning, match="mixes 4 masks of 0/1"):
        images.from_folder(image_dir, masks, mask_mode="binary")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # one encoding: no warning
        images.from_folder(*_folder(tmp_path / "one", [BINARY * 255, BINARY * 255]))


def test_animated_gif_is_refused_and_a_gray_gif_reads_gray(tmp_path):
    frames = [Image.fromarray(GRAY), Image.fromarray(255 - GRAY), Image.fromarray(GRAY // 2)]
    (tmp_path / "images").mkdir()
    frames[0].save(tmp_path / "images" / "a.gif", save_all=True, append_images=frames[1:])
    save_image(tmp_path / "masks" / "a.png", BINARY * 255)
    message = re.escape(f"{tmp_path / 'images' / 'a.gif'} has 3 frames (animated or "
                        f"multi-page); save one image")
    with pytest.raises(ValueError, match=message):
        images.from_folder(tmp_path / "images", tmp_path / "masks")
    with pytest.raises(ValueError, match="has 3 frames"):
        images.read_mask(tmp_path / "images" / "a.gif")
    # one frame, gray palette: a gray image (was RGB, which turned the folder RGB)
    frames[0].save(tmp_path / "images" / "a.gif")
    assert Image.open(tmp_path / "images" / "a.gif").mode == "P"
    save_image(tmp_path / "images" / "b.png", GRAY)
    save_image(tmp_path / "masks" / "b.png", BINARY * 255)
    split = images.from_folder(tmp_path / "images", tmp_path / "masks")
    assert split.images.shape == (2, 6, 8, 1)
    np.testing.assert_allclose(split.images[0, ..., 0], GRAY / 255, atol=1e-7)
    Image.fromarray(BINARY * 255).save(tmp_path / "masks" / "a.gif")
    (tmp_path / "masks" / "a.png").unlink()
    np.testing.assert_array_equal(images.from_folder(tmp_path / "images", tmp_path / "masks")
                                  .masks[0, ..., 0], BINARY)
    colour = tmp_path / "colour.gif"
    Image.fromarray(RGB).convert("P").save(colour)
    assert images.read_image(colour).shape == (6, 8, 3)


def test_check_not_empty_says_when_every_mask_is_background():
    empty = np.zeros((2, 6, 8, 1), np.float32)
    assert images.check_not_empty(empty) == (
        "every mask is all background (2 masks, no pixel above 0): a model trained on them "
        "learns to predict nothing; check the masks and mask_mode")
    void = np.zeros((6, 8), np.int32)
    void[0] = 255
    assert images.check_not_empty([void], ignore_index=255) == (
        "every mask is all background (1 mask, no pixel above 0 but ignore_index=255): a model "
        "trained on them learns to predict nothing; check the masks and mask_mode")
    assert images.check_not_empty([void]) is None
    assert images.check_not_empty([empty[0], BINARY]) is None


# ------------------------------------------------------------- the array conventions


def test_as_image_scales_each_dtype_and_refuses_the_rest():
    for array, expected in [(np.array([[0, 51, 255]], np.uint8), [0, 0.2, 1]),
                            (np.array([[0, 65535]], np.uint16), [0, 1]),
                            (np.array([[True, False]]), [1, 0]),
                            (np.array([[0.25, 1.0]]), [0.25, 1])]:
        image = images.as_image(array)
        assert image.dtype == np.float32 and image.shape == (1, array.shape[1], 1)
        np.testing.assert_allclose(image.ravel(), expected, atol=1e-6)
    opaque = np.dstack([RGB, np.full((6, 8), 255, np.uint8)])
    assert images.as_image(opaque).shape == (6, 8, 3)
    for array, message in [
        (np.array([[0.5, 2.0]]), "images[1] has float64 pixels in [0.5, 2]; expected 8-bit, "
                                 "16-bit or float pixels in [0, 1] (scale them so)"),
        (np.array([[0, 300]]), "images[1] has int64 pixels in [0, 300]; expected 8-bit, 16-bit "
                               "or float pixels in [0, 1]"),
        # resampling overshoots 1 by a rounding error: the message shows by how much
        (np.array([[0.5, 1.0000001]], np.float32), "images[1] has float32 pixels in [0.5, "
                                                   "1.0000001]; expected"),
        (np.array([[np.nan, 0]]), "images[1] has NaN pixels (1 of them)"),
        (np.zeros((2, 2, 5)), "images[1] has shape (2, 2, 5); expected (H, W) or (H, W, C)"),
        (np.dstack([GRAY, np.zeros_like(GRAY)]), "images[1] has an alpha channel with 48 "
                                                 "transparent pixels"),
    ]:
        with pytest.raises(ValueError, match="^" + re.escape(message)):
            images.as_image(array, "images[1]")


def test_as_image_stretch_maps_any_range_for_display():
    np.testing.assert_allclose(images.as_image(np.array([[-1.0, 0.0, 3.0]]), stretch=True)
                               .ravel(), [0, 0.25, 1])
    np.testing.assert_allclose(images.as_image(np.array([[7, 7]]), stretch=True).ravel(), [0, 0])
    np.testing.assert_allclose(images.as_image(np.array([[0.2, 0.4]]), stretch=True).ravel(),
                               [0.2, 0.4])  # in [0, 1]: kept as it is
    see_through = np.dstack([RGB, np.zeros((6, 8), np.uint8)])
    assert images.as_image(see_through, stretch=True).shape == (6, 8, 3)


def test_as_mask_modes():
    binary = images.as_mask(BINARY.astype(bool))
    assert binary.dtype == np.float32 and binary.shape == (6, 8, 1)
    assert images.as_mask(BINARY.astype(np.float64)[..., None]).dtype == np.float32
    classes = images.as_mask(CLASSES)
    assert classes.dtype == np.int32 and classes.shape == (6, 8, 1)
    np.testing.assert_array_equal(classes[..., 0], CLASSES)
    labels = images.as_mask(np.stack([BINARY, 1 - BINARY, BINARY], -1).astype(np.float32))
    assert labels.dtype == np.float32 and labels.shape == (6, 8, 3)
    # an explicit mode converts values that fit it
    assert images.as_mask(BINARY, mode="binary").dtype == np.float32
    assert images.as_mask(BINARY.astype(np.float32), mode="multiclass").dtype == np.int32
    assert images.as_mask(np.stack([BINARY] * 2, -1), mode="multilabel").shape == (6, 8, 2)
    void = np.where(CLASSES == 3, 255, CLASSES)
    np.testing.assert_array_equal(images.as_mask(void, ignore_index=255)[..., 0], void)
    assert images.as_mask(CLASSES, n_classes=4).dtype == np.int32
    assert images.as_mask(np.array([[0, 1, 255]]), n_classes=256).max() == 255
    batch = images.as_mask(np.stack([BINARY, BINARY]).astype(bool), batch=True)
    assert batch.shape == (2, 6, 8, 1) and batch.dtype == np.float32
    assert images.as_mask(np.stack([CLASSES] * 3), batch=True).shape == (3, 6, 8, 1)
    assert images.MASK_MODES == ("binary", "multiclass", "multilabel")


SHAPES = ("must have the shape (H, W) or (H, W, 1), or (H, W, labels) of 0/1 floats or bools "
          "for a multilabel mask; got ")


@pytest.mark.parametrize("array, kwargs, message", [
    (np.array([[0.0, np.nan]]), {}, "contains 1 NaN value(s)"),
    (np.array([[0.0, 0.5, 1.0]]), {}, "must hold 0 and 1 only (a binary mask; class indices "
                                      "are integers); got the values 0, 0.5, 1"),
    (np.array([[-1, 0, 1]]), {}, "must hold class indices (integers >= 0); got the values "
                                 "-1, 0, 1"),
    (np.array([[0, 255]]), {}, "holds 0 and 255 only: a binary mask stored as 0/255; pass "
                               "(mask > 0)"),
    (np.array([[0, 255]], np.uint8), {"mode": "binary"}, "holds 0 and 255 only"),
    (np.array([[0, 1, 255]]), {}, "has the values 0, 1, 255, which as class indices make 256 "
                                  "classes, 253 of them never used. If 255 marks unlabelled "
                                  "pixels, pass ignore_index=255"),
    (np.array([[0, 1, 2]]), {"mode": "binary"}, "must hold 0 and 1 only (a binary mask); got "
                                                "the values 0, 1, 2"),
    (np.array([[0, 3]]), {"n_classes": 3}, "must hold class indices below n_classes=3; got 3"),
    (np.zeros((6, 8, 3), int), {}, SHAPES + "(6, 8, 3) (int64)"),
    (np.zeros((6, 8, 2), np.float32), {"mode": "binary"}, SHAPES + "(6, 8, 2) (float32)"),
    (np.zeros((2, 6, 8, 1)), {}, SHAPES + "(2, 6, 8, 1) (float64)"),
    (np.zeros(4), {"batch": True}, "must have the shape (N, H, W) or (N, H, W, 1), or (N, H, "
                                   "W, labels)"),
])
def test_as_mask_refuses_with_the_name_first(array, kwargs, message):
    with pytest.raises(ValueError, match="^" + re.escape("masks[2] " + message)):
        images.as_mask(array, "masks[2]", **kwargs)


def test_as_mask_value_errors_say_the_fix():
    with pytest.raises(images.MaskValuesError) as error:
        images.as_mask(np.array([[0, 1, 255]]))
    assert error.value.fix == {"ignore_index": 255} and error.value.files == ["mask"]
    with pytest.raises(ValueError, match=re.escape("mode must be one of 'binary', 'multiclass',"
                                                   " 'multilabel'; got 'classes'")):
        images.as_mask(CLASSES, mode="classes")
    with pytest.raises(ValueError, match="^ignore_index must be an integer >= 0"):
        images.as_mask(CLASSES, ignore_index=-1)


def test_as_mask_refuses_0_1_255_only_not_dense_labels_up_to_255():
    objects = np.arange(256, dtype=np.uint8).reshape(16, 16)  # 255 labelled objects
    np.testing.assert_array_equal(images.as_mask(objects)[..., 0], objects)
    for values in ([0, 1, 2, 255], [0, 255, 3]):  # 256 classes, most unused: not void
        assert images.as_mask(np.array([values], np.uint8)).max() == 255
    np.testing.assert_array_equal(images.as_mask(np.array([[0, 1, 255]]), ignore_index=255),
                                  [[[0], [1], [255]]])


def test_as_prediction():
    soft = np.array([[0.2, 0.7]])
    labels, scores = images.as_prediction(soft)
    assert labels.dtype == np.float32 and labels.ravel().tolist() == [0, 1]
    assert scores.dtype == np.float32 and scores.shape == (1, 2, 1)
    assert images.as_prediction(soft, threshold=0.1).labels.ravel().tolist() == [1, 1]
    hard = images.as_prediction(CLASSES)
    assert hard.scores is None and hard.labels.dtype == np.int32
    assert images.as_prediction(BINARY.astype(bool)).labels.dtype == np.float32
    three = np.stack([np.full((2, 2), p) for p in (0.2, 0.5, 0.3)], -1)
    assert images.as_prediction(three).labels.ravel().tolist() == [1] * 4
    assert images.as_prediction(three * 9 - 4).labels.ravel().tolist() == [1] * 4  # logits
    multilabel = images.as_prediction(three, mode="multilabel").labels
    assert multilabel.dtype == np.float32 and multilabel[0, 0].tolist() == [0, 0, 0]
    softmax = np.stack([np.full((2, 2), 0.6), np.full((2, 2), 0.4)], -1)
    assert images.as_prediction(softmax, threshold=0.3).labels.ravel().tolist() == [1] * 4
    assert images.as_prediction(softmax).labels.ravel().tolist() == [0] * 4
    with pytest.raises(ValueError, match=re.escape("prediction must hold probabilities in "
                                                   "[0, 1] (after a sigmoid); got values in "
                                                   "[-1, 2]")):
        images.as_prediction(np.array([[-1.0, 2.0]]))
    with pytest.raises(ValueError, match="threshold must be a finite number >= 0 and <= 1"):
        images.as_prediction(soft, threshold=2)


# ------------------------------------------------------ volumes: spatial_dims=3


def test_as_image_reads_volumes_with_spatial_dims_3():
    ct = np.arange(2 * 3 * 4, dtype=np.uint16).reshape(2, 3, 4) * 1000
    volume = images.as_image(ct, spatial_dims=3)
    assert volume.shape == (2, 3, 4, 1) and volume.dtype == np.float32
    assert volume[1, 2, 3, 0] == np.float32(23000 / 65535)
    assert images.as_image(np.zeros((2, 3, 4, 5), np.uint8), spatial_dims=3).shape == (2, 3, 4, 5)
    assert images.as_image(np.zeros((6, 8, 3), np.uint8)).shape == (6, 8, 3)  # 2D: RGB
    assert images.as_image(np.zeros((6, 8, 3), np.uint8), spatial_dims=3).shape == (6, 8, 3, 1)
    for array, message in [
        (np.array([[[-1024, 3071]]], np.int16), "ct has int16 voxels in [-1024, 3071]; expected "
         "8-bit, 16-bit or float voxels in [0, 1] (normalize_intensity maps a scan's values "
         "onto [0, 1]: a CT window, 'zscore')"),
        (np.full((1, 2, 2), np.nan), "ct has NaN voxels (4 of them)"),
        (np.zeros((2, 3)), "ct has shape (2, 3); expected a volume (D, H, W) or (D, H, W, C)"),
        (np.zeros((1, 2, 3, 4, 5)), "ct has shape (1, 2, 3, 4, 5); expected a volume"),
    ]:
        with pytest.raises(ValueError, match="^" + re.escape(message)):
            images.as_image(array, "ct", spatial_dims=3)
    with pytest.raises(ValueError, match=re.escape("spatial_dims must be one of 2, 3; got 1")):
        images.as_image(ct, spatial_dims=1)


def test_as_mask_reads_volume_masks_with_spatial_dims_3():
    classes = np.arange(24).reshape(2, 3, 4) % 3
    mask = images.as_mask(classes, spatial_dims=3)
    assert mask.shape == (2, 3, 4, 1) and mask.dtype == np.int32
    np.testing.assert_array_equal(mask[..., 0], classes)
    binary = images.as_mask(classes > 0, spatial_dims=3)
    assert binary.shape == (2, 3, 4, 1) and binary.dtype == np.float32
    labels = images.as_mask(np.zeros((2, 3, 4, 2), np.float32), spatial_dims=3)
    assert labels.shape == (2, 3, 4, 2) and labels.dtype == np.float32
    batch = images.as_mask(np.zeros((5, 2, 3, 4), bool), batch=True, spatial_dims=3)
    assert batch.shape == (5, 2, 3, 4, 1)
    assert images.as_mask(classes[0]).shape == (3, 4, 1)  # 2D as before
    for array, kwargs, axes in [(np.zeros((2, 3, 4, 2), int), {}, "D, H, W"),
                                (np.zeros((3, 4)), {}, "D, H, W"),
                                (np.zeros((2, 3, 4)), {"batch": True}, "N, D, H, W")]:
        with pytest.raises(ValueError, match="^" + re.escape(
                f"volume must have the shape ({axes}) or ({axes}, 1), or ({axes}, labels) of "
                f"0/1 floats or bools for a multilabel mask; got")):
            images.as_mask(array, "volume", spatial_dims=3, **kwargs)
    with pytest.raises(ValueError, match=re.escape("holds 0 and 255 only")):
        images.as_mask(np.array([[[0, 255]]]), spatial_dims=3)


def test_as_prediction_reads_volume_outputs_with_spatial_dims_3():
    scores = np.zeros((2, 3, 4, 3), np.float32)
    scores[..., 2] = 0.8
    scores[0, 0, 0] = [0.5, 0.3, 0.2]
    labels, kept = images.as_prediction(scores, spatial_dims=3)
    assert labels.shape == (2, 3, 4, 1) and labels.dtype == np.int32 and kept.shape == scores.shape
    assert int(labels[0, 0, 0, 0]) == 0 and int((labels == 2).sum()) == 23
    sigmoid = images.as_prediction(np.full((2, 3, 4), 0.7), spatial_dims=3).labels
    assert sigmoid.shape == (2, 3, 4, 1) and sigmoid.dtype == np.float32 and sigmoid.all()
    hard = images.as_prediction(np.ones((2, 3, 4), np.uint8), spatial_dims=3)
    assert hard.labels.shape == (2, 3, 4, 1) and hard.scores is None
    with pytest.raises(ValueError, match=re.escape(
            "prediction must have the shape (D, H, W) or (D, H, W, C); got (2, 3)")):
        images.as_prediction(np.zeros((2, 3)), spatial_dims=3)
    with pytest.raises(ValueError, match=re.escape(
            "prediction must have the shape (H, W) or (H, W, C); got (1, 2, 3, 4)")):
        images.as_prediction(np.zeros((1, 2, 3, 4)))  # 2D: the message as before
