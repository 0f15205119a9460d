"""keras_unet/data.py: pipeline shapes, dtypes, value ranges, determinism, crops, fit."""

import re

import keras
import numpy as np
import pytest

from keras_unet import build_unet, output_size
from keras_unet.data import make_dataset


def batches(dataset, n):
    return [tuple(np.asarray(t) for t in batch) for batch in dataset.take(n)]


@pytest.fixture
def gray():
    rng = np.random.default_rng(0)
    images = (rng.random((6, 64, 80)) * 255).astype(np.uint8)  # no channel axis, uint8
    masks = images > 128  # bool: binary
    return images, masks


def test_binary_batches(gray):
    images, masks = gray
    (image, mask), = batches(make_dataset(images, masks, batch_size=4, seed=0), 1)
    assert image.shape == (4, 64, 80, 1) and image.dtype == np.float32
    assert mask.shape == (4, 64, 80, 1) and mask.dtype == np.float32
    assert 0 <= image.min() and image.max() <= 1
    assert set(np.unique(mask)) == {0.0, 1.0}


def test_without_augmentation_the_pairs_are_the_inputs(gray):
    images, masks = gray
    dataset = make_dataset(images, masks, batch_size=6, augment=False, shuffle=False,
                           repeat=False, seed=0)
    (image, mask), = batches(dataset, 7)  # one pass: one batch of 6
    np.testing.assert_array_equal(image[..., 0], images / np.float32(255))
    np.testing.assert_array_equal(mask[..., 0], masks)


def test_augmentation_keeps_masks_aligned(gray):
    # the mask is computed from the image; after the joint transform it must still be
    # (up to interpolation at the edges of the bright regions) the same function of it
    images, _ = gray
    smooth = np.stack([np.kron(im[::8, ::8], np.ones((8, 8), np.uint8)) for im in images])
    masks = smooth > 128
    # geometric transforms only: brightness/contrast/gamma would move the threshold
    dataset = make_dataset(smooth, masks, batch_size=6, seed=1,
                           augment={"intensity_probability": 0.0})
    image, mask = batches(dataset, 1)[0]
    disagree = np.mean((image > 128 / 255) != (mask > 0.5))
    assert disagree < 0.05, disagree


def test_multiclass_masks_stay_class_indices():
    rng = np.random.default_rng(1)
    images = rng.random((4, 48, 48, 3)).astype(np.float32)
    labels = rng.integers(0, 4, (4, 48, 48)).astype(np.uint8)
    (image, mask), = batches(make_dataset(images, labels, batch_size=4, tile=32, seed=0), 1)
    assert image.shape == (4, 32, 32, 3) and mask.shape == (4, 32, 32, 1)
    assert mask.dtype == np.int32 and set(np.unique(mask)) <= {0, 1, 2, 3}


def test_tiles_from_images_of_different_sizes_with_weights_and_output_crop():
    rng = np.random.default_rng(2)
    images = [rng.random((h, w, 1)).astype(np.float32) for h, w in ((100, 120), (92, 92), (150, 97))]
    masks = [im > 0.5 for im in images]
    weights = [np.full(im.shape[:2], 2.0, np.float32) for im in images]
    tile = 92
    crop = (tile - output_size(tile, 3, "valid")) // 2  # 44 -> output 4
    dataset = make_dataset(images, masks, weights=weights, batch_size=2, tile=tile,
                           output_crop=crop, seed=0)
    image, mask, weight = batches(dataset, 1)[0]
    assert image.shape == (2, 92, 92, 1)
    assert mask.shape == (2, 4, 4, 1) and weight.shape == (2, 4, 4)
    assert dataset.element_spec[0].shape.as_list() == [2, 92, 92, 1]  # static: fit knows
    assert weight.min() >= 0 and weight.max() <= 2.0 + 1e-5


def test_identical_batches_for_an_identical_seed(gray):
    images, masks = gray

    def first_batches(seed):
        return batches(make_dataset(images, masks, batch_size=3, tile=48, seed=seed), 4)

    one, two, other = first_batches(7), first_batches(7), first_batches(8)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(one[0][0], other[0][0])
    # the epochs differ from one another (fresh augmentation after the cache)
    assert not np.array_equal(one[0][0], one[2][0])


def test_every_iterator_gives_the_same_batches(gray):
    """Keras opens an iterator to build the model and drops it: a later one must not depend
    on how far that one ran (tf.data's reshuffling would: it advances one shared generator)."""
    images, masks = gray
    dataset = make_dataset(images, masks, batch_size=4, tile=32, augment=False, seed=0)
    first = batches(dataset, 6)  # four passes over the 6 images
    dropped = iter(dataset)
    for _ in range(5):
        next(dropped)
    del dropped
    for a, b in zip(first, batches(dataset, 6)):
        np.testing.assert_array_equal(a[0], b[0])
    passes = make_dataset(images, masks, batch_size=6, augment=False, seed=0)  # whole images
    first, second = (np.asarray(batch[0]) for batch in passes.take(2))
    assert sorted(first.sum((1, 2, 3))) == pytest.approx(sorted(second.sum((1, 2, 3))))
    assert not np.array_equal(first, second)  # the same images, shuffled anew in each pass


def test_shards_side_by_side_are_the_unsharded_batches(gray):
    """Two processes with the same seed and ``shard=(2, i)``, 2 examples each: their batches,
    process 0's first, are the batches of 4 of one process, tile for tile."""
    images, masks = gray
    options = dict(tile=32, seed=3)
    whole = batches(make_dataset(images, masks, batch_size=4, **options), 5)
    halves = [batches(make_dataset(images, masks, batch_size=2, shard=(2, i), **options), 5)
              for i in (0, 1)]
    for batch, first, second in zip(whole, *halves):
        for k in (0, 1):
            np.testing.assert_array_equal(batch[k], np.concatenate([first[k], second[k]]))


def test_one_pass_without_repeat_keeps_the_last_partial_batch(gray):
    images, masks = gray
    dataset = make_dataset(images, masks, batch_size=4, repeat=False, seed=0)
    assert [b[0].shape[0] for b in batches(dataset, 10)] == [4, 2]


def test_fit_a_valid_padding_model_on_the_pipeline():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(3)
    images = rng.random((4, 120, 120, 1)).astype(np.float32)
    masks = images > 0.5
    model = build_unet((92, 92, 1), 1, depth=3, filters=4, padding="valid")
    crop = (92 - model.output_shape[1]) // 2
    dataset = make_dataset(images, masks, batch_size=2, tile=92, output_crop=crop, seed=0)
    model.compile("adam", "binary_crossentropy")
    history = model.fit(dataset, steps_per_epoch=3, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2 and np.isfinite(history.history["loss"]).all()


def test_output_crop_mirrors_so_the_papers_tile_fits_isbi(shared_data):
    from keras_unet.datasets import load_isbi2012

    train, _ = load_isbi2012(shared_data / "isbi2012_em")
    dataset = make_dataset(train.images[:2], train.masks[:2], batch_size=2, tile=572,
                           output_crop=92, seed=0)  # 512 images, the paper's 572 -> 388
    image, mask = batches(dataset, 1)[0]
    assert image.shape == (2, 572, 572, 1) and mask.shape == (2, 388, 388, 1)
    # without augmentation and tiles, a whole image comes back mirrored by 92 pixels
    # and its mask exactly as it was
    whole = make_dataset(train.images[:1], train.masks[:1], batch_size=1, augment=False,
                         output_crop=92, shuffle=False, repeat=False)
    image, mask = batches(whole, 1)[0]
    assert image.shape == (1, 696, 696, 1)
    np.testing.assert_array_equal(image[0, 92:-92, 92:-92], train.images[0])
    np.testing.assert_array_equal(image[0, 91, 92:-92], train.images[0][1])  # mirrored row
    np.testing.assert_array_equal(mask[0], train.masks[0])


def test_multilabel_masks_are_tiled_augmented_and_cropped_channel_by_channel():
    rng = np.random.default_rng(4)
    coarse = rng.random((4, 6, 6, 1)).astype(np.float32)
    images = np.kron(coarse, np.ones((1, 8, 8, 1), np.float32))  # smooth: 8x8 blocks
    labels = np.concatenate([images > 0.3, images > 0.6, images < 0.2], -1).astype(np.float32)
    dataset = make_dataset(images, labels, batch_size=4, tile=32, output_crop=4, seed=0,
                           augment={"intensity_probability": 0.0})
    image, mask = batches(dataset, 1)[0]
    assert image.shape == (4, 32, 32, 1) and mask.shape == (4, 24, 24, 3)
    assert mask.dtype == np.float32 and set(np.unique(mask)) == {0.0, 1.0}
    # nearest-neighbour sampling of one field: each label stays the same rule of its image
    inner = image[:, 4:-4, 4:-4, 0]
    for channel, rule in enumerate((inner > 0.3, inner > 0.6, inner < 0.2)):
        assert np.mean((mask[..., channel] > 0.5) != rule) < 0.1
    whole = make_dataset(images, labels, batch_size=4, augment=False, shuffle=False, repeat=False)
    np.testing.assert_array_equal(batches(whole, 1)[0][1], labels)


def test_masks_are_read_as_images_as_mask_reads_them():
    from keras_unet.images import as_mask

    images = np.zeros((2, 16, 16), np.uint8)
    eye = np.eye(16, dtype=np.uint8)[None].repeat(2, 0)
    void = eye.copy()
    void[:, 0] = 255  # a 255 border of unlabelled pixels
    for masks in (eye.astype(np.int64) * 255, np.full((2, 16, 16), 0.5), void):
        with pytest.raises(ValueError) as expected:
            as_mask(masks[0], "masks[0]")
        with pytest.raises(ValueError, match="^" + re.escape(str(expected.value)) + "$"):
            make_dataset(images, masks)
    # unlabelled pixels pass with ignore_index, and an explicit mode converts 0/1 integers
    _, mask = batches(make_dataset(images, void, ignore_index=255, augment=False), 1)[0]
    assert mask.dtype == np.int32 and set(np.unique(mask)) == {0, 1, 255}
    _, mask = batches(make_dataset(images, eye, mask_mode="binary", augment=False), 1)[0]
    assert mask.dtype == np.float32


# ------------------------------------------------------------------ volumes (3D)

@pytest.fixture
def volumes():
    """Three smooth volumes (4-voxel blocks) of (16, 32, 32), their masks (> 0.5) and
    weights."""
    coarse = np.random.default_rng(5).random((3, 4, 8, 8)).astype(np.float32)
    images = np.kron(coarse, np.ones((1, 4, 4, 4), np.float32))
    return images, images > 0.5, 1 + images


def test_volume_batches_with_a_tile_and_an_output_crop_per_axis(volumes):
    images, masks, weights = volumes
    dataset = make_dataset(images, masks, weights=weights, batch_size=2, tile=(16, 32, 32),
                           output_crop=(4, 8, 8), augment=False, seed=0)
    assert [s.shape.as_list() for s in dataset.element_spec] == [
        [2, 16, 32, 32, 1], [2, 8, 16, 16, 1], [2, 8, 16, 16]]
    for image, mask, weight in batches(dataset, 3):
        assert image.shape == (2, 16, 32, 32, 1) and image.dtype == np.float32
        assert mask.shape == (2, 8, 16, 16, 1) and weight.shape == (2, 8, 16, 16)
        inner = image[:, 4:-4, 8:-8, 8:-8, 0]  # the window's part the masks cover
        np.testing.assert_array_equal(mask[..., 0], inner > 0.5)
        np.testing.assert_array_equal(weight, 1 + inner)


def test_a_whole_volume_comes_back_mirrored_per_axis(volumes):
    images, masks, _ = volumes
    whole = make_dataset(images[:1], masks[:1], batch_size=1, augment=False, shuffle=False,
                         repeat=False, output_crop=(1, 2, 3), spatial_dims=3)
    (image, mask), = batches(whole, 2)
    assert image.shape == (1, 18, 36, 38, 1) and mask.shape == (1, 16, 32, 32, 1)
    np.testing.assert_array_equal(image[0, 1:-1, 2:-2, 3:-3, 0], images[0])
    np.testing.assert_array_equal(image[0, 0, 2:-2, 3:-3, 0], images[0, 1])  # mirrored slice
    np.testing.assert_array_equal(image[0, 1:-1, 2:-2, 2, 0], images[0, :, :, 1])
    np.testing.assert_array_equal(mask[0, ..., 0], masks[0])


def test_volumes_of_several_sizes_in_a_list():
    rng = np.random.default_rng(6)
    images = [rng.random(shape).astype(np.float32) for shape in ((10, 24, 20), (8, 30, 40, 1))]
    dataset = make_dataset(images, [im > 0.5 for im in images], batch_size=4, tile=(8, 16, 16),
                           output_crop=(0, 2, 2), augment=False, seed=0)
    image, mask = batches(dataset, 1)[0]
    assert image.shape == (4, 8, 16, 16, 1) and mask.shape == (4, 8, 12, 12, 1)
    np.testing.assert_array_equal(mask[..., 0], image[:, :, 2:-2, 2:-2, 0] > 0.5)


def test_identical_volume_batches_for_an_identical_seed(volumes):
    images, masks, _ = volumes

    def first_batches(seed):
        return batches(make_dataset(images, masks, batch_size=2, tile=(8, 8, 8), seed=seed,
                                    foreground=0.5), 3)

    one, two, other = first_batches(7), first_batches(7), first_batches(8)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(one[0][0], other[0][0])


def test_augmented_volumes_keep_their_masks_aligned():
    # images = class / 4 in blocks of 4 voxels: wherever the warped image is still a flat
    # level (inside a block), the mask sampled by the same field must hold that class
    coarse = np.random.default_rng(5).integers(0, 4, (3, 4, 8, 8))
    labels = np.kron(coarse, np.ones((1, 4, 4, 4), np.int64)).astype(np.uint8)
    images = labels / np.float32(4)
    options = dict(batch_size=6, tile=(12, 24, 24), output_crop=(2, 4, 4), seed=1)
    dataset = make_dataset(images, labels, weights=1 + images,
                           augment={"intensity_probability": 0.0}, **options)
    (image, mask, weight), = batches(dataset, 1)
    assert image.shape == (6, 12, 24, 24, 1) and mask.shape == (6, 8, 16, 16, 1)
    assert mask.dtype == np.int32 and weight.shape == (6, 8, 16, 16)
    level = 4 * image[:, 2:-2, 4:-4, 4:-4, 0]
    flat = np.abs(level - np.round(level)) < 1e-4
    assert 0.3 < flat.mean() < 0.9  # many voxels flat, many interpolated between blocks
    assert (mask[..., 0][flat] == np.round(level[flat])).all()
    assert np.mean(mask[:, ::-1, ..., 0][flat] == np.round(level[flat])) < 0.6  # one flip apart
    np.testing.assert_allclose(weight, 1 + level / 4, atol=1e-6)  # trilinear, the same field
    plain = make_dataset(images, labels, weights=1 + images, augment=False, **options)
    assert not np.array_equal(image, batches(plain, 1)[0][0])  # it did transform


# ------------------------------------------------------- foreground oversampling

def blob(shape, voxels):
    """A zero image of ``shape`` (0.25 everywhere) and its mask, 1 at ``voxels``."""
    mask = np.zeros(shape, np.uint8)
    mask[tuple(np.transpose(voxels))] = 1
    return np.full(shape, 0.25, np.float32), mask


@pytest.mark.parametrize("shape, tile, inside, corner", [
    ((16, 32, 32), (8, 16, 16), (9, 20, 11), (0, 31, 0)),
    ((40, 48), (16, 16), (20, 30), (39, 1))])
def test_foreground_one_centres_every_window_on_a_foreground_voxel(shape, tile, inside, corner):
    # one volume with a voxel inside (the window's centre), one with a voxel at a corner
    # (the window moved to stay in the volume, the voxel still in it)
    (image, mask), (edge, edge_mask) = blob(shape, [inside]), blob(shape, [corner])
    dataset = make_dataset([image, edge + 0.5], [mask, edge_mask], batch_size=20, tile=tile,
                           augment=False, foreground=1.0, seed=0)
    (windows, masks), = batches(dataset, 1)
    centre = tuple(t // 2 for t in tile)
    first = windows[(slice(None),) + (0,) * len(tile) + (0,)] == 0.25
    assert 0 < first.sum() < 20
    assert (masks[first][(slice(None),) + centre + (0,)] == 1).all()
    assert (masks.reshape(20, -1).sum(1) == 1).all()  # the one voxel in every window
    # the corner voxel sits where the clipped window puts it
    position = tuple(c if c < t // 2 else t - (n - c) for c, t, n in zip(corner, tile, shape))
    assert (masks[~first][(slice(None),) + position + (0,)] == 1).all()


def chance(shape, tile, box):
    """The exact share of all windows of ``tile`` in ``shape`` that overlap ``box`` (per axis
    (first, last) voxel), by counting every start."""
    share = 1.0
    for n, t, (low, high) in zip(shape, tile, box):
        starts = np.arange(n - t + 1)
        share *= np.mean((starts <= high) & (starts + t > low))
    return share


@pytest.mark.parametrize("foreground", [None, 0.33, 1.0])
def test_the_share_of_windows_with_foreground(foreground):
    # a 2x2x2 blob in a (16, 64, 64) volume; 8^3 windows overlap it by chance 2.2% of the time
    shape, tile, box = (16, 64, 64), (8, 8, 8), ((6, 7), (30, 31), (40, 41))
    image, mask = blob(shape, np.argwhere(np.ones((2, 2, 2))) + [6, 30, 40])
    rate = chance(shape, tile, box)
    assert abs(rate - 8 / 9 * (9 / 57) ** 2) < 1e-12
    dataset = make_dataset(image[None], mask[None], batch_size=100, tile=tile, augment=False,
                           foreground=foreground, seed=0)
    masks = np.concatenate([b[1][..., 0] for b in batches(dataset, 6)])  # 600 windows
    with_blob = np.mean(masks.reshape(600, -1).any(1))
    at_centre = np.mean(masks[:, 4, 4, 4])  # the window's centre on a blob voxel
    share = foreground or 0.0
    # 600 windows: the standard deviation of a share near 1/3 is 0.019; 0.05 is 2.6 of them
    assert abs(with_blob - (share + (1 - share) * rate)) < 0.05, with_blob
    assert abs(at_centre - share) < 0.05, at_centre
    assert foreground != 1.0 or with_blob == at_centre == 1.0


def test_foreground_ignores_unlabelled_voxels():
    image, mask = blob((8, 24, 24), [(4, 12, 12)])
    mask[:, :4] = 255  # void slab: not foreground
    dataset = make_dataset(image[None], mask[None], batch_size=16, tile=(4, 8, 8),
                           augment=False, foreground=1.0, ignore_index=255, seed=0)
    (_, masks), = batches(dataset, 1)
    assert masks.dtype == np.int32 and (masks[:, 2, 4, 4, 0] == 1).all()


def test_volumes_without_foreground_get_random_windows():
    image, mask = blob((8, 24, 24), [(4, 12, 12)])
    ramp = np.broadcast_to(0.5 + np.arange(24, dtype=np.float32) / 48, (8, 24, 24))
    dataset = make_dataset([image, ramp], [mask, np.zeros_like(mask)], batch_size=40,
                           tile=(4, 8, 8), augment=False, foreground=1.0, seed=0)
    (windows, masks), = batches(dataset, 1)
    empty = windows[:, 0, 0, 0, 0] != 0.25
    assert 5 < empty.sum() < 35 and not masks[empty].any()
    assert (masks[~empty][:, 2, 4, 4, 0] == 1).all()
    assert len(np.unique(windows[empty, 0, 0, 0, 0])) > 5  # starts spread along the width


# ----------------------------------------------------------------------- errors

VOLUME = np.zeros((16, 32, 32), np.float32)
VOLUME_ERRORS = {
    "a tile of two sides for volumes": (
        dict(tile=(8, 8), spatial_dims=3),
        "tile must be an integer >= 1 or a tuple of 3 of them; got (8, 8)"),
    "a tile of four sides": (
        dict(tile=(8, 8, 8, 8)), "tile must be an integer >= 1 or a tuple of 2 or 3 of them; "
                                 "got (8, 8, 8, 8)"),
    "an output crop of two sides": (
        dict(tile=(8, 16, 16), output_crop=(1, 1)),
        "output_crop must be an integer >= 0 or a tuple of 3 of them; got (1, 1)"),
    "a tile deeper than a volume": (
        dict(images=[VOLUME, VOLUME[:12]], tile=(16, 32, 32)),
        "tile (16, 32, 32) is larger than images[1], (12, 32, 32), along axis 0 (depth): "
        "choose tile[0] <= 12"),
    "a tile wider than a mirrored volume": (
        dict(images=[VOLUME[..., :20], VOLUME], tile=(8, 16, 24), output_crop=(0, 0, 1)),
        "tile (8, 16, 24) is larger than images[0], (16, 32, 20) mirrored by output_crop="
        "(0, 0, 1), along axis 2 (width): choose tile[2] <= 22"),
    "an output crop of half the tile's depth": (
        dict(tile=(8, 16, 16), output_crop=(4, 2, 2)),
        "output_crop must be 3 integers >= 0 smaller than half the tile (8, 16, 16); "
        "got (4, 2, 2)"),
    "foreground above 1": (
        dict(tile=(8, 16, 16), foreground=1.5),
        "foreground must be a finite number >= 0 and <= 1; got 1.5"),
    "foreground below 0": (
        dict(tile=(8, 16, 16), foreground=-0.1),
        "foreground must be a finite number >= 0 and <= 1; got -0.1"),
    "foreground without tiles": (
        dict(foreground=0.5, spatial_dims=3),
        "foreground must be None or 0 without tile= (whole images: no windows to centre); "
        "got 0.5"),
    "a 2D image among volumes": (
        dict(images=[VOLUME, VOLUME[0]], tile=(8, 16, 16)),
        "images[1] has shape (32, 32), not (D, H, W) or (D, H, W, C): images of another rank "
        "than spatial_dims=3"),
    "volumes read as 2D images": (
        dict(images=VOLUME[None, ..., None], masks=VOLUME[None], tile=16),
        "images[0] has shape (16, 32, 32, 1), not (H, W) or (H, W, C): images of another rank "
        "than spatial_dims=2"),
    "weights of a slice": (
        dict(tile=(8, 16, 16), weights=[VOLUME[0], VOLUME[0]]),
        "weights[0]: pixel weights must be numbers of shape (depth, height, width); got "
        "float32 (32, 32)"),
    "an unknown spatial_dims": (
        dict(spatial_dims=1), "spatial_dims must be one of 2, 3; got 1"),
}


@pytest.mark.parametrize("case", sorted(VOLUME_ERRORS))
def test_volume_arguments_refused(case):
    arguments, message = VOLUME_ERRORS[case]
    images = arguments.pop("images", [VOLUME, VOLUME])
    masks = arguments.pop("masks", [image > 0 for image in images])
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        make_dataset(images, masks, **arguments)
