"""keras_unet/inference.py: tiled = whole-image prediction, sizes, channels, TTA,
memory, bad input, folders, backends."""

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
from keras_unet.inference import mask_from_scores, predict_folder, predict_tiled, tile_grid
from keras_unet.model import padding_reach

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
    print(json.dumps({"shape": list(tiled.shape), "difference": float(np.abs(plain - whole).max())}))
    """
)


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_tiled_prediction_on_other_backends(backend):
    done = subprocess.run([sys.executable, "-c", _BACKEND_SCRIPT], capture_output=True, text=True,
                          env=dict(os.environ, KERAS_BACKEND=backend), timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["shape"] == [148, 108, 2] and result["difference"] < 1e-5
