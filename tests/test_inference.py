"""keras_unet/inference.py: tiled = whole-image prediction, sizes, channels, TTA,
memory, bad input, folders, backends; volumes (3D) likewise."""

import itertools
import json
import os
import re
import subprocess
import sys
import textwrap
import tracemalloc

import keras
import numpy as np
import pytest
from PIL import Image

from keras_unet import build_unet, receptive_border
from keras_unet.images import normalize_intensity
from keras_unet.inference import (DEFAULT_TILE_3D, TilePlan, mask_from_scores, predict_folder,
                                  predict_tiled, tile_grid)
from keras_unet.model import padding_reach, valid_input_sizes

RNG = np.random.default_rng(0)


def unet(padding, channels=1, classes=2, **options):
    keras.utils.set_random_seed(0)
    return build_unet((None, None, channels), classes, depth=2, filters=4, padding=padding,
                      dropout=0, **options)


def whole_valid(model, image, depth=2):
    """One pass of the whole mirrored image: what overlap-tile must reproduce."""
    b = receptive_border(depth)
    return model.predict_on_batch(np.pad(image, ((b, b), (b, b), (0, 0)), mode="reflect")[None])[0]


# ------------------------------------------------------------ tiled = whole image


@pytest.mark.parametrize("tile", [44, 84, 124])
@pytest.mark.parametrize("channels", [1, 3])
def test_valid_padding_tiles_equal_the_whole_image(tile, channels):
    model = unet("valid", channels)
    image = RNG.random((296, 196, channels)).astype(np.float32)  # 296 + 40 = 336 fits depth 2
    tiled = predict_tiled(model, image, tile=tile, progress=False)
    assert tiled.shape == (296, 196, 2)
    np.testing.assert_allclose(tiled, whole_valid(model, image), atol=1e-6)


@pytest.mark.parametrize("blend, overlap", [("gaussian", 0.25), ("uniform", 0.5), ("gaussian", 0.0)])
def test_same_padding_tiles_equal_the_whole_image_away_from_its_edges(blend, overlap):
    model = unet("same")
    image = RNG.random((200, 136, 1)).astype(np.float32)  # multiples of 4: one pass fits
    whole = model.predict_on_batch(image[None])[0]
    tiled = predict_tiled(model, image, tile=96, overlap=overlap, blend=blend, progress=False)
    reach = padding_reach(model)  # the whole pass's own zero padding differs there
    assert reach == 22
    np.testing.assert_allclose(tiled[reach:-reach, reach:-reach], whole[reach:-reach, reach:-reach],
                               atol=1e-5)
    # at the image's edges tiling mirrors where one pass pads with zeros
    assert np.abs(tiled - whole).max() > 1e-3


@pytest.mark.parametrize("upsampling", ["transpose", "bilinear"])
def test_same_padding_tiles_keep_only_outputs_beyond_the_derived_reach(upsampling):
    model = build_unet((128, 128, 1), 2, depth=2, filters=4, dropout=0, upsampling=upsampling)
    image = RNG.random((128, 128, 1)).astype(np.float32)
    whole = model.predict_on_batch(image[None])[0]
    reach = padding_reach(model)  # 22 and 28
    tiled = predict_tiled(model, image, progress=False)  # tile 128: one and a half per axis
    inner = slice(reach, -reach)
    np.testing.assert_allclose(tiled[inner, inner], whole[inner, inner], atol=1e-5)


def test_valid_bilinear_tiles_equal_the_whole_image_beyond_its_reach():
    model = unet("valid", upsampling="bilinear")
    reach = padding_reach(model)  # its bilinear up-sampling clamps at the edges: 4 px
    image = RNG.random((296, 196, 1)).astype(np.float32)
    tiled = predict_tiled(model, image, tile=124, progress=False)
    once = build_unet((336, 236, 1), 2, depth=2, filters=4, padding="valid", dropout=0,
                      upsampling="bilinear")  # Keras 3.15 fails on a second size: a twin
    once.set_weights(model.get_weights())
    whole, inner = whole_valid(once, image), slice(reach, -reach)
    np.testing.assert_allclose(tiled[inner, inner], whole[inner, inner], atol=1e-5)


def test_mask_from_scores_for_each_kind_of_model():
    assert mask_from_scores(np.array([[0.2, 0.7]])).tolist() == [[0, 255]]
    assert mask_from_scores(np.array([[[0.1, 0.6, 0.3]]])).tolist() == [[1]]
    labels = mask_from_scores(np.array([[[0.9, 0.2, 0.7]]]), multilabel=True)
    assert labels.dtype == np.uint8 and labels.tolist() == [[[255, 0, 255]]]
    assert mask_from_scores(np.array([[[0.2], [0.7]]])).tolist() == [[0, 255]]  # (H, W, 1)


def test_predict_folder_writes_one_channel_per_label_for_a_multilabel_model(tmp_path):
    import tifffile

    (tmp_path / "in").mkdir()
    Image.fromarray((RNG.random((40, 36)) * 255).astype(np.uint8)).save(tmp_path / "in" / "a.png")
    model = unet("same", classes=3, multilabel=True)
    (written,) = predict_folder(model, tmp_path / "in", tmp_path / "out", progress=False)
    assert written == tmp_path / "out" / "a.tif"
    scores = predict_tiled(model, np.asarray(Image.open(tmp_path / "in" / "a.png")), progress=False)
    np.testing.assert_array_equal(tifffile.imread(written), np.where(scores > 0.5, 255, 0))


def test_odd_and_non_square_sizes_and_a_fixed_size_model():
    valid = unet("valid")
    for shape in ((7, 300), (301, 197)):
        image = RNG.random(shape).astype(np.float32)  # (H, W): gray without a channel axis
        assert predict_tiled(valid, image, tile=84, progress=False).shape == shape + (2,)
    # a 1x1 image, mirrored to fill the default tile
    assert predict_tiled(valid, np.ones((1, 1)), progress=False).shape == (1, 1, 2)
    fixed = build_unet((92, 92, 1), 1, depth=2, filters=4, padding="valid")
    out = predict_tiled(fixed, RNG.random((130, 70)).astype(np.float32), progress=False)
    assert out.shape == (130, 70) and 0 <= out.min() and out.max() <= 1  # binary: (H, W)


def test_a_3000_by_2000_image_through_a_valid_model():
    model = build_unet((None, None, 1), 1, depth=2, filters=2, padding="valid")
    image = (RNG.random((3000, 2000)) * 255).astype(np.uint8)
    out = predict_tiled(model, image, tile=204, batch_size=16, progress=False)
    assert out.shape == (3000, 2000) and out.dtype == np.float32
    assert np.isfinite(out).all() and 0 <= out.min() and out.max() <= 1
    # exact against one pass on a corner crop of the same image
    corner = image[:200, :120, None] / np.float32(255)
    np.testing.assert_allclose(predict_tiled(model, corner, tile=204, progress=False),
                               whole_valid(model, corner)[..., 0], atol=1e-6)


# -------------------------------------------------------------------- tile_grid


def test_tile_grid_valid_boxes_abut_on_the_pooling_grid():
    model = unet("valid")  # depth 2: 124 in, 84 out, 84 kept (a multiple of 4)
    boxes = tile_grid(model, (300, 200, 1), tile=124)
    assert boxes.dtype == np.int64 and boxes.shape == (12, 4)
    assert sorted({int(t) for t in boxes[:, 0]}) == [0, 84, 168, 252]
    assert sorted({int(v) for v in boxes[:, 1]}) == [0, 84, 168]
    assert boxes[-1].tolist() == [252, 168, 300, 200]  # the last row and column clipped
    cover = np.zeros((300, 200), int)
    for top, left, bottom, right in boxes:
        cover[top:bottom, left:right] += 1
    assert (cover == 1).all()  # every pixel predicted by exactly one tile
    # the paper's net at the default tile 572 -> 388: 384 kept (388 % 16 = 4), 2 x 2 tiles
    paper = build_unet((None, None, 1), 2, depth=4, filters=2, padding="valid")
    assert tile_grid(paper, (512, 512)).tolist() == [
        [0, 0, 384, 384], [0, 384, 384, 512], [384, 0, 512, 384], [384, 384, 512, 512]]
    # tile 380 -> 196 out, 192 kept: a 3 x 3 grid of step 192
    assert sorted({int(t) for t in tile_grid(paper, (512, 512), tile=380)[:, 0]}) == [0, 192, 384]


def test_tile_grid_is_where_predict_tiled_puts_each_tile():
    model = unet("valid")
    image = RNG.random((150, 100, 1)).astype(np.float32)
    tiled = predict_tiled(model, image, tile=84, progress=False)  # 84 in, 44 out and kept
    b = receptive_border(2)
    mirrored = np.pad(image, ((b, 84), (b, 84), (0, 0)), mode="reflect")
    boxes = tile_grid(model, image.shape, tile=84)
    assert len(boxes) == 4 * 3
    for top, left, bottom, right in boxes:  # that tile alone gives that box's pixels
        alone = model.predict_on_batch(mirrored[None, top:top + 84, left:left + 84])[0]
        np.testing.assert_allclose(tiled[top:bottom, left:right],
                                   alone[:bottom - top, :right - left], atol=1e-6)


def test_tile_grid_same_padding_boxes_overlap():
    model = unet("same")  # tile 96: 22 px dropped per side, 52 kept, step 36 (overlap 0.25)
    boxes = tile_grid(model, (200, 136), tile=96)  # the image starts 24 px in: offset -2
    assert boxes.shape == (24, 4)
    assert boxes[:2].tolist() == [[0, 0, 50, 50], [0, 34, 50, 86]]
    assert boxes[-1].tolist() == [178, 106, 200, 136]
    assert sorted({int(t) for t in boxes[:, 0]}) == [0, 34, 70, 106, 142, 178]
    assert tile_grid(model, (200, 136), tile=96, overlap=0.0)[1].tolist() == [0, 50, 50, 102]


def test_tile_grid_bad_input():
    valid = unet("valid")
    for shape in ((0, 5), (5,), "512x512", (5.0, 5), (True, 4)):
        with pytest.raises(ValueError, match=re.escape("image_shape must be (H, W) or (H, W, C)")):
            tile_grid(valid, shape)
    with pytest.raises(ValueError, match="tile 82 does not fit the model"):
        tile_grid(valid, (64, 64), tile=82)
    with pytest.raises(ValueError, match=re.escape("overlap must be a finite number >= 0")):
        tile_grid(valid, (64, 64), overlap=-0.1)


# --------------------------------------------------------- test-time augmentation


def symmetrise(model):
    """Make every kernel invariant to the 8 flips and rotations of the square: the
    model then commutes with them, and test-time augmentation changes nothing."""
    for layer in model.layers:
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose)):
            kernel, *rest = layer.get_weights()
            views = [np.rot90(k, r, axes=(0, 1)) for k in (kernel, kernel[::-1]) for r in range(4)]
            layer.set_weights([np.mean(views, axis=0), *rest])
    return model


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("tta", ["flips", "d4"])
def test_tta_with_a_symmetric_model_changes_nothing(padding, tta):
    model = symmetrise(unet(padding, channels=3))
    image = RNG.random((150, 110, 3)).astype(np.float32)
    plain = predict_tiled(model, image, tile=84 if padding == "valid" else 96, progress=False)
    augmented = predict_tiled(model, image, tile=84 if padding == "valid" else 96, tta=tta,
                              progress=False)
    np.testing.assert_allclose(augmented, plain, atol=1e-5)


def test_tta_averages_probabilities():
    model = unet("valid", classes=3)
    image = RNG.random((100, 90, 1)).astype(np.float32)
    plain = predict_tiled(model, image, tile=84, progress=False)
    d4 = predict_tiled(model, image, tile=84, tta="d4", progress=False)
    assert np.abs(d4 - plain).max() > 1e-3  # an asymmetric model: TTA does something
    np.testing.assert_allclose(d4.sum(-1), 1.0, atol=1e-5)  # still probabilities


# ----------------------------------------------------------------------- memory


def test_memory_is_bounded_by_the_image_not_the_tiles():
    model = build_unet((None, None, 1), 1, depth=2, filters=2)
    peaks = {}
    for side in (1000, 2000):
        image = RNG.random((side, side)).astype(np.float32)
        tracemalloc.start()
        predict_tiled(model, image, tile=256, overlap=0.0, batch_size=4, progress=False)
        peaks[side] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    image_bytes = 2000 * 2000 * 4
    # float image + mirrored copy + scores + weight sums: about 4 images, plus a batch
    assert peaks[2000] < 5 * image_bytes, peaks
    assert 3 < peaks[2000] / peaks[1000] < 5  # grows with the pixels (4x), not more


# -------------------------------------------------------------------- bad input


def test_bad_input_names_the_value_and_what_works():
    same, valid = unet("same"), unet("valid")
    image = RNG.random((64, 64, 1)).astype(np.float32)
    with pytest.raises(ValueError, match=re.escape(
            "the image, 64x64, is smaller than the 84x84 outputs of tile 128: use a smaller "
            "tile (e.g. 108) or tile=None")):
        predict_tiled(same, image, tile=128, progress=False)
    with pytest.raises(ValueError, match=re.escape(
            "the image has 3 channels but the model takes 1 (gray: image[..., :1]")):
        predict_tiled(same, np.repeat(image, 3, -1), progress=False)
    nan = image.copy()
    nan[3, 4] = np.nan
    with pytest.raises(ValueError, match=re.escape("image has NaN pixels (1 of them)")):
        predict_tiled(same, nan, progress=False)
    with pytest.raises(ValueError, match=re.escape(
            "tile 82 does not fit the model: input size 82 does not fit a depth-2 U-Net with "
            "padding='valid'") + ".*Nearest sizes that fit: 80, 84"):
        predict_tiled(valid, image, tile=82, progress=False)
    with pytest.raises(ValueError, match=re.escape(
            "tile 44 is too small for this model: its zero padding reaches 22 px into each "
            "side; use a tile >= 60")):
        predict_tiled(same, image, tile=44, progress=False)
    fixed = build_unet((92, 92, 1), 1, depth=2, filters=4, padding="valid")
    with pytest.raises(ValueError, match=re.escape(
            "tile 84 differs from the model's fixed input (92, 92)")):
        predict_tiled(fixed, image, tile=84, progress=False)
    for arguments, message in (
            ({"overlap": 1.0}, "overlap must be a finite number >= 0 and < 1; got 1.0"),
            ({"blend": "box"}, "blend must be one of 'gaussian', 'uniform'; got 'box'"),
            ({"tta": "all"}, "tta must be one of None, 'flips', 'd4'; got 'all'"),
            ({"batch_size": 0}, "batch_size must be an integer >= 1; got 0")):
        with pytest.raises(ValueError, match=re.escape(message)):
            predict_tiled(same, image, progress=False, **arguments)


# ---------------------------------------------------------------------- folders


def test_predict_folder_writes_masks_with_the_same_names(tmp_path):
    (tmp_path / "in").mkdir()
    images = {"a.png": (RNG.random((70, 90)) * 255).astype(np.uint8),
              "b.tif": (RNG.random((40, 33)) * 255).astype(np.uint8)}
    for name, array in images.items():
        Image.fromarray(array).save(tmp_path / "in" / name)
    binary = build_unet((None, None, 1), 1, depth=2, filters=4, padding="valid")
    written = predict_folder(binary, tmp_path / "in", tmp_path / "out", probabilities=True,
                             progress=False)  # the default tile for images of any size
    assert [p.name for p in written] == ["a.png", "b.png"]
    for name, array in images.items():
        stem = name.split(".")[0]
        mask = np.asarray(Image.open(tmp_path / "out" / f"{stem}.png"))
        assert mask.shape == array.shape and set(np.unique(mask)) <= {0, 255}
        scores = predict_tiled(binary, array, progress=False)
        np.testing.assert_array_equal(mask, np.where(scores > 0.5, 255, 0))
        import tifffile

        np.testing.assert_allclose(tifffile.imread(tmp_path / "out" / "probabilities" / f"{stem}.tif"),
                                   scores, atol=1e-6)
    # the masks' folder holds masks only: the probabilities are in their own subfolder
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png", "probabilities"]
    classes = unet("valid", classes=3)
    predict_folder(classes, tmp_path / "in", tmp_path / "classes", progress=False)
    mask = np.asarray(Image.open(tmp_path / "classes" / "a.png"))
    assert mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 1, 2}


def test_predict_folder_files_get_the_umask_mode(tmp_path):
    (tmp_path / "in").mkdir()
    Image.fromarray(np.zeros((40, 40), np.uint8)).save(tmp_path / "in" / "a.png")
    model = build_unet((None, None, 1), 1, depth=2, filters=4)
    saved = os.umask(0o002)
    try:
        predict_folder(model, tmp_path / "in", tmp_path / "out", probabilities=True,
                       progress=False)
    finally:
        os.umask(saved)
    modes = {str(p.relative_to(tmp_path / "out")): oct(p.stat().st_mode & 0o777)
             for p in (tmp_path / "out").rglob("*.*")}
    assert modes == {"a.png": "0o664", "probabilities/a.tif": "0o664"}  # not mkstemp's 0o600


def test_predict_folder_failure_leaves_nothing_half_written(tmp_path):
    (tmp_path / "in").mkdir()
    Image.fromarray(np.zeros((40, 40), np.uint8)).save(tmp_path / "in" / "a.png")
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(tmp_path / "in" / "b.png")  # RGB
    model = build_unet((None, None, 1), 1, depth=2, filters=4)
    with pytest.raises(ValueError, match=r"b\.png: the image has 3 channels but the model takes 1"):
        predict_folder(model, tmp_path / "in", tmp_path / "out", progress=False)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png"]  # no .part files
    with pytest.raises(ValueError, match=r"input_dir .*missing is not a folder"):
        predict_folder(model, tmp_path / "missing", tmp_path / "out", progress=False)
    # a list of image files: the same run, over those files only
    written = predict_folder(model, [tmp_path / "in" / "a.png"], tmp_path / "list", progress=False)
    assert written == [tmp_path / "list" / "a.png"]


def test_predict_file_keeps_existing_files_unless_told_and_leaves_no_lock(tmp_path):
    from keras_unet.inference import LOCK_NAME, check_output_dir, predict_file

    (tmp_path / "in").mkdir()
    Image.fromarray(np.zeros((40, 40), np.uint8)).save(tmp_path / "in" / "a.png")
    model = build_unet((None, None, 1), 1, depth=2, filters=4)
    target = predict_file(model, tmp_path / "in" / "a.png", tmp_path / "out", probabilities=True,
                          progress=False)
    assert target == tmp_path / "out" / "a.png"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "probabilities"]
    assert not (tmp_path / "out" / LOCK_NAME).exists()  # removed when the run ends
    (tmp_path / "file").mkdir()
    (tmp_path / "file" / "probabilities").write_text("the user's own")
    with pytest.raises(ValueError, match="holds a file named probabilities where the"):
        check_output_dir(tmp_path / "file", ["a.png"], probabilities=True)
    (tmp_path / "out" / "a.png").unlink()  # only the probabilities are left: still refused
    with pytest.raises(ValueError, match=re.escape("already holds files this run would write "
                                                   "(probabilities/a.tif)")):
        predict_file(model, tmp_path / "in" / "a.png", tmp_path / "out", probabilities=True,
                     progress=False)
    check_output_dir(tmp_path / "out", ["a.png"])  # without probabilities, nothing to replace
    predict_file(model, tmp_path / "in" / "a.png", tmp_path / "out", probabilities=True,
                 overwrite=True, progress=False)
    assert (tmp_path / "out" / "a.png").exists()
    # a run that fails before its first mask leaves no folder it made behind
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(tmp_path / "in" / "rgb.png")
    with pytest.raises(ValueError, match="the image has 3 channels"):
        predict_file(model, tmp_path / "in" / "rgb.png", tmp_path / "new" / "deeper",
                     progress=False)
    assert not (tmp_path / "new").exists()


# --------------------------------------------------------------------- backends

_BACKEND_SCRIPT = textwrap.dedent(
    """
    import json, numpy as np
    from keras_unet import build_unet, receptive_border
    from keras_unet.inference import predict_tiled
    model = build_unet((None, None, 1), 2, depth=2, filters=4, padding="valid", dropout=0)
    image = np.random.default_rng(0).random((148, 108, 1)).astype("float32")  # +40 fits
    b = receptive_border(2)
    whole = np.asarray(model.predict_on_batch(np.pad(image, ((b, b), (b, b), (0, 0)), "reflect")[None]))[0]
    tiled = predict_tiled(model, image, tile=84, tta="flips", progress=False)
    plain = predict_tiled(model, image, tile=84, progress=False)
    model3d = build_unet((None, None, None, 1), 2, depth=1, filters=2, padding="valid")
    volume = np.random.default_rng(1).random((12, 20, 18)).astype("float32")  # + 16: fits
    whole3d = np.asarray(model3d.predict_on_batch(np.pad(volume[..., None], [(8, 8)] * 3 + [(0, 0)],
                                                         "reflect")[None]))[0]
    tiled3d = predict_tiled(model3d, volume, tile=(20, 24, 24), tta="flips", progress=False)
    plain3d = predict_tiled(model3d, volume, tile=(20, 24, 24), progress=False)
    print(json.dumps({"shape": list(tiled.shape), "difference": float(np.abs(plain - whole).max()),
                      "shape3d": list(tiled3d.shape),
                      "difference3d": float(np.abs(plain3d - whole3d).max())}))
    """
)


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_tiled_prediction_on_other_backends(backend):
    done = subprocess.run([sys.executable, "-c", _BACKEND_SCRIPT], capture_output=True, text=True,
                          env=dict(os.environ, KERAS_BACKEND=backend), timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["shape"] == [148, 108, 2] and result["difference"] < 1e-5
    assert result["shape3d"] == [12, 20, 18, 2] and result["difference3d"] < 1e-5


# ------------------------------------------------------------------------ volumes


def unet3d(padding, classes=2, depth=2, **options):
    keras.utils.set_random_seed(0)
    return build_unet((None, None, None, 1), classes, depth=depth, filters=2, padding=padding,
                      dropout=0, **options)


def mirrored(volume, border, depth=2, pool_size=2):
    """The volume mirrored by ``border`` a side, and at its ends up to sizes that fit."""
    sizes = tuple(int(n + 2 * b) for n, b in zip(volume.shape[:3], border))
    fits = [f[-1] for f in valid_input_sizes(sizes, depth, "valid", pool_size=pool_size)]
    ends = [f - n - b for f, n, b in zip(fits, volume.shape, border)]
    return np.pad(volume, [*zip(border, ends), (0, 0)], mode="reflect")


def whole_volume(model, volume, border, **options):
    """One pass of the whole mirrored volume, cropped to it: what overlap-tile must give."""
    d, h, w = volume.shape[:3]
    return model.predict_on_batch(mirrored(volume, border, **options)[None])[0][:d, :h, :w]


@pytest.mark.parametrize("tile, n_tiles", [(None, 1), ((44, 52, 48), 5 * 4 * 5)])
def test_valid_volume_tiles_equal_one_pass_over_the_whole_mirrored_volume(tile, n_tiles):
    model = unet3d("valid")
    volume = RNG.random((20, 45, 38, 1)).astype(np.float32)
    assert len(tile_grid(model, volume.shape, tile=tile)) == n_tiles  # 44 -> 4, 52 -> 12, ...
    tiled = predict_tiled(model, volume, tile=tile, progress=False)
    assert tiled.shape == (20, 45, 38, 2) and tiled.dtype == np.float32
    np.testing.assert_allclose(tiled, whole_volume(model, volume, (20, 20, 20)), atol=1e-5)


def test_a_volume_default_tile_fits_the_model_and_the_volume():
    valid, same = unet3d("valid"), unet3d("same")
    assert TilePlan(valid).tile == DEFAULT_TILE_3D["valid"] == (116, 132, 132)  # 76 x 92 x 92 out
    # an axis shorter than the outputs: the smallest tile whose outputs cover it, mirrored
    assert TilePlan(valid, image_size=(20, 45, 38)).tile == (60, 88, 80)  # 20 x 48 x 40 out
    assert TilePlan(valid, image_size=(200, 45, 380)).tile == (116, 88, 132)
    # same padding drops 22 px a side: 64 would keep 20, raised to keep half of it (32)
    plan = TilePlan(same)
    assert plan.tile == (76, 128, 128) and plan.keep == ((22, 22, 22), (54, 106, 106))
    assert TilePlan(same, image_size=(20, 45, 38)).tile == (68, 92, 84)
    deep = build_unet((None, None, None, 1), 1, depth=4, filters=2, padding="valid")
    assert TilePlan(deep).tile == (204, 204, 204)  # 188 -> 4 is below the 16 px grid: 20 out


def test_same_padding_volume_tiles_equal_the_whole_pass_away_from_its_edges():
    model = unet3d("same", depth=1)
    volume = RNG.random((24, 32, 34, 1)).astype(np.float32)  # even: one pass fits
    whole = model.predict_on_batch(volume[None])[0]
    reach = padding_reach(model)
    assert reach == 8
    inner = (slice(reach, -reach),) * 3
    for blend, overlap in (("gaussian", 0.25), ("uniform", 0.5)):
        boxes = tile_grid(model, volume.shape, tile=32, overlap=overlap)  # 16 of 32 kept
        assert len(boxes) == (2 * 3 * 3 if overlap == 0.25 else 2 * 3 * 4)
        tiled = predict_tiled(model, volume, tile=32, overlap=overlap, blend=blend,
                              progress=False)
        np.testing.assert_allclose(tiled[inner], whole[inner], atol=1e-5)
        assert np.abs(tiled - whole).max() > 1e-2  # mirrored, not zero-padded, at the edges
    gaussian = predict_tiled(model, volume, tile=32, progress=False)
    uniform = predict_tiled(model, volume, tile=32, blend="uniform", progress=False)
    assert np.abs(gaussian[inner] - uniform[inner]).max() < 1e-5  # the overlaps agree there


def test_anisotropic_pooling_aligns_the_tiles_per_axis():
    pools = [(1, 2, 2), (2, 2, 2)]
    model = unet3d("valid", pool_size=pools)
    plan = TilePlan(model, (30, 52, 48))
    assert plan.align == (2, 4, 4) and plan.out == (6, 12, 8) and plan.step == (6, 12, 8)
    boxes = tile_grid(model, (20, 45, 38), tile=(30, 52, 48))
    assert boxes.shape == (4 * 4 * 5, 6)
    assert sorted({int(z) for z in boxes[:, 0]}) == [0, 6, 12, 18]  # 6: on axis 0's grid of 2
    assert sorted({int(y) for y in boxes[:, 1]}) == [0, 12, 24, 36]
    volume = RNG.random((20, 45, 38, 1)).astype(np.float32)
    tiled = predict_tiled(model, volume, tile=(30, 52, 48), progress=False)
    border = receptive_border(2, pool_size=pools)
    assert border == (12, 20, 20)
    np.testing.assert_allclose(tiled, whole_volume(model, volume, border, pool_size=pools),
                               atol=1e-5)
    with pytest.raises(ValueError, match=re.escape(
            "tile (31, 52, 48) does not fit the model: input depth (axis 0) 31 does not fit")):
        predict_tiled(model, volume, tile=(31, 52, 48), progress=False)


def test_anisotropic_same_padding_tiles_keep_more_along_the_less_pooled_axis():
    model = unet3d("same", pool_size=[(1, 2, 2), (2, 2, 2)])
    plan = TilePlan(model, (40, 64, 64))  # zero padding reaches 12 voxels along axis 0, 22 across
    assert plan.keep == ((12, 22, 22), (28, 42, 42)) and plan.span == (16, 20, 20)
    volume = RNG.random((48, 64, 64, 1)).astype(np.float32)
    whole = model.predict_on_batch(volume[None])[0]
    tiled = predict_tiled(model, volume, tile=(40, 64, 64), progress=False)
    inner = (slice(12, -12), slice(22, -22), slice(22, -22))
    np.testing.assert_allclose(tiled[inner], whole[inner], atol=1e-5)


def test_tile_grid_volume_boxes_cover_it_once():
    model = unet3d("valid")
    boxes = tile_grid(model, (20, 45, 38, 1), tile=(44, 52, 48))  # 4 x 12 x 8 kept
    assert boxes.dtype == np.int64 and boxes.shape == (100, 6)
    assert boxes[:2].tolist() == [[0, 0, 0, 4, 12, 8], [0, 0, 8, 4, 12, 16]]
    assert boxes[-1].tolist() == [16, 36, 32, 20, 45, 38]  # clipped on the last two axes
    cover = np.zeros((20, 45, 38), int)
    for z0, y0, x0, z1, y1, x1 in boxes:
        cover[z0:z1, y0:y1, x0:x1] += 1
    assert (cover == 1).all()
    with pytest.raises(ValueError, match=re.escape(
            "image_shape must be (D, H, W) or (D, H, W, C) of positive integers; got (20, 45)")):
        tile_grid(model, (20, 45))


class Counting:
    """A model that records the shape of each batch it is given."""

    def __init__(self, model):
        self.model, self.batches = model, []

    def __getattr__(self, name):
        return getattr(self.model, name)

    def predict_on_batch(self, batch):
        self.batches.append(batch.shape)
        return self.model.predict_on_batch(batch)


@pytest.mark.parametrize("tta, passes", [(None, 1), ("flips", 8), ("d4", 16)])
def test_volume_tta_flips_every_axis_and_averages_back(tta, passes):
    model = Counting(unet3d("valid"))
    volume = RNG.random((20, 44, 36, 1)).astype(np.float32)
    tiled = predict_tiled(model, volume, tile=(60, 84, 84), tta=tta, progress=False)  # 1 tile
    assert model.batches == [(1, 60, 84, 84, 1)] * passes
    mirror = mirrored(volume, (20, 20, 20))[None]  # each flip of it: its flip's mirrored volume

    def seen(axes, swap):  # the model's scores as it sees the volume flipped (and H, W swapped)
        turn = (lambda x: np.swapaxes(x, 2, 3)) if swap else (lambda x: x)
        return np.flip(turn(model.model.predict_on_batch(turn(np.flip(mirror, axes)))), axes)[0]

    flips = [a for k in range(4) for a in itertools.combinations((1, 2, 3), k)] if tta else [()]
    expected = np.mean([seen(a, swap) for a in flips for swap in {False, tta == "d4"}], axis=0)
    np.testing.assert_allclose(tiled, expected[:20, :44, :36], atol=1e-5)
    plain = predict_tiled(model.model, volume, tile=(60, 84, 84), progress=False)
    assert (np.abs(tiled - plain).max() > 1e-3) == (tta is not None)  # TTA changes scores
    np.testing.assert_allclose(tiled.sum(-1), 1.0, atol=1e-5)  # still probabilities


def test_a_keras_3d_model_not_built_here_is_measured():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, None, None, 1))
    hidden = keras.layers.Conv3D(3, 3, activation="relu")(inputs)
    model = keras.Model(inputs, keras.layers.Conv3D(2, 3, activation="softmax")(hidden))
    volume = RNG.random((10, 13, 11, 1)).astype(np.float32)
    plan = TilePlan(model, (12, 16, 14))
    assert plan.out == (8, 12, 10) and plan.valid and plan.start == (2, 2, 2)
    tiled = predict_tiled(model, volume, tile=(12, 16, 14), progress=False)
    whole = model.predict_on_batch(np.pad(volume, [(2, 2)] * 3 + [(0, 0)], "reflect")[None])[0]
    np.testing.assert_allclose(tiled, whole, atol=1e-5)


def test_volume_memory_grows_with_the_volume_not_the_tiles():
    model = build_unet((None, None, None, 1), 1, depth=1, filters=2, padding="valid")
    peaks = {}
    for side in (128, 256):
        volume = RNG.random((8, side, side)).astype(np.float32)
        tracemalloc.start()
        predict_tiled(model, volume, tile=(24, 72, 72), batch_size=4, progress=False)  # 9, 25
        peaks[side] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    grown, batch = 8 * (256**2 - 128**2) * 4, 4 * 24 * 72 * 72 * 4  # bytes
    assert peaks[256] - peaks[128] < 4 * grown, peaks  # the volume, its scores, their weights
    assert peaks[256] < 4 * volume.nbytes + 8 * batch, peaks  # and a few batches of tiles


def test_volume_progress_bar_counts_the_tiles(capsys):
    model = build_unet((None, None, None, 1), 1, depth=1, filters=2, padding="valid")
    predict_tiled(model, np.zeros((8, 40, 40)), tile=(24, 32, 32), batch_size=3)  # 1 x 3 x 3
    shown = capsys.readouterr().out
    assert "9/9" in shown and "/tile" in shown


def test_mask_from_scores_of_volumes_is_0_1():
    scores = np.array([[[0.2, 0.7]], [[0.9, 0.4]]])  # (D, H, W) = (2, 1, 2), one channel
    assert mask_from_scores(scores, spatial_dims=3).tolist() == [[[0, 1]], [[1, 0]]]
    assert mask_from_scores(scores).tolist() == [[1], [0]]  # 2D: (H, W) with 2 classes
    classes = mask_from_scores(np.array([[[[0.1, 0.2, 0.7], [0.5, 0.3, 0.2]]]]), spatial_dims=3)
    assert classes.dtype == np.uint8 and classes.tolist() == [[[2, 0]]]
    labels = mask_from_scores(np.array([[[[0.9, 0.2, 0.7]]]]), multilabel=True, spatial_dims=3)
    assert labels.dtype == np.uint8 and labels.tolist() == [[[[1, 0, 1]]]]


def test_volume_bad_input_names_the_shapes():
    model = unet3d("valid")
    volume = RNG.random((8, 10, 12)).astype(np.float32)
    with pytest.raises(ValueError, match=re.escape(
            "image has shape (40, 40) but the model is 3D (input shape (None, None, None, 1)): "
            "give (D, H, W) or (D, H, W, C)")):
        predict_tiled(model, np.zeros((40, 40)), progress=False)
    with pytest.raises(ValueError, match=re.escape(
            "image has shape (8, 10, 12, 1) but the model is 2D (input shape (None, None, 1)): "
            "give (H, W) or (H, W, C)")):
        predict_tiled(unet("valid"), volume[..., None], progress=False)
    with pytest.raises(ValueError, match=re.escape(
            "tile must be an int or a tuple of 3 ints, one per axis (D, H, W) of the model's "
            "input; got (64, 64)")):
        predict_tiled(model, volume, tile=(64, 64), progress=False)
    with pytest.raises(ValueError, match=re.escape("tile must be an integer >= 1; got 0")):
        predict_tiled(model, volume, tile=(44, 0, 44), progress=False)
    with pytest.raises(ValueError, match=re.escape(
            "tta='d4' turns the tiles in their last two axes, so it needs a tile of one size in "
            "both; got tile (44, 52, 48)")):
        predict_tiled(model, volume, tile=(44, 52, 48), tta="d4", progress=False)
    with pytest.raises(ValueError, match=re.escape(
            "the volume, 8x10x12, is smaller than the 12x28x20 outputs of tile (52, 68, 60): "
            "use a smaller tile (e.g. (48, 48, 52)) or tile=None")):
        predict_tiled(model, volume, tile=(52, 68, 60), progress=False)


def write_scan(path, shape=(38, 45, 20)):
    """A NIfTI scan in (i, j, k) order, CT-like values, an oblique affine and a description."""
    import nibabel

    affine = np.array([[0.0, -0.7, 0.0, 120.0], [0.7, 0.0, 0.0, -80.0], [0.0, 0.0, 2.5, 30.0],
                       [0.0, 0.0, 0.0, 1.0]])
    scan = nibabel.Nifti1Image(RNG.integers(-1000, 1000, shape).astype(np.int16), affine)
    scan.header["descrip"] = b"case one"
    nibabel.save(scan, path)
    return np.asanyarray(scan.dataobj), affine


def test_predict_folder_writes_volume_masks_on_the_scans_grid(tmp_path):
    import nibabel

    (tmp_path / "in").mkdir()
    data, affine = write_scan(tmp_path / "in" / "case1.nii.gz")
    model = unet3d("valid", classes=1)
    scores = predict_tiled(model, normalize_intensity(np.transpose(data, (2, 1, 0))),
                           progress=False)  # "auto": a CT (minimum -1000), the abdomen window
    assert scores.shape == (20, 45, 38)
    threshold = float(np.median(scores))  # an untrained model: both labels in the mask
    written = predict_folder(model, tmp_path / "in", tmp_path / "out", probabilities=True,
                             threshold=threshold, progress=False)
    assert written == [tmp_path / "out" / "case1.nii.gz"]
    mask = nibabel.load(written[0])
    np.testing.assert_allclose(mask.affine, affine, atol=1e-6)  # opens over the scan
    assert mask.shape == data.shape == (38, 45, 20) and mask.get_data_dtype() == np.uint8
    assert mask.header["descrip"] == b"case one"
    labels = np.transpose(np.asanyarray(mask.dataobj), (2, 1, 0))
    assert labels.dtype == np.uint8
    np.testing.assert_array_equal(labels, (scores > threshold).astype(np.uint8))  # not 0/255
    assert 0 < labels.sum() < labels.size
    probabilities = nibabel.load(tmp_path / "out" / "probabilities" / "case1.nii.gz")
    assert probabilities.get_data_dtype() == np.float32 and probabilities.shape == data.shape
    np.testing.assert_allclose(probabilities.affine, affine, atol=1e-6)
    np.testing.assert_allclose(np.transpose(probabilities.get_fdata(), (2, 1, 0)), scores,
                               atol=1e-6)
    with pytest.raises(ValueError, match=re.escape(
            "already holds files this run would write (case1.nii.gz, probabilities/"
            "case1.nii.gz)")):
        predict_folder(model, tmp_path / "in", tmp_path / "out", probabilities=True,
                       progress=False)
    classes = unet3d("valid", classes=3)
    (again,) = predict_folder(classes, tmp_path / "in", tmp_path / "classes", progress=False,
                              intensity=(-500, 500))
    values = np.asanyarray(nibabel.load(again).dataobj)
    assert values.dtype == np.uint8 and set(np.unique(values)) <= {0, 1, 2}


def test_predict_folder_refuses_a_volume_for_a_2d_model_and_an_image_for_a_3d_one(tmp_path):
    (tmp_path / "scans").mkdir()
    write_scan(tmp_path / "scans" / "case1.nii.gz", (8, 9, 10))
    with pytest.raises(ValueError, match=re.escape(
            "case1.nii.gz: a volume, but the model is 2D (input shape (None, None, 1))")):
        predict_folder(unet("same"), tmp_path / "scans", tmp_path / "out", progress=False)
    (tmp_path / "images").mkdir()
    Image.fromarray(np.zeros((40, 40), np.uint8)).save(tmp_path / "images" / "a.png")
    with pytest.raises(ValueError, match=re.escape(
            "a.png: an image, but the model is 3D (input shape (None, None, None, 1))")):
        predict_folder(unet3d("same"), tmp_path / "images", tmp_path / "out", progress=False)
    with pytest.raises(ValueError, match=re.escape("intensity must be 'auto', 'zscore'")):
        predict_folder(unet3d("same"), tmp_path / "scans", tmp_path / "out", progress=False,
                       intensity="ct")
    assert not (tmp_path / "out").exists()
