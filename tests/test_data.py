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
