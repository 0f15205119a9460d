"""tf.data pipelines from arrays: random tiles, aligned augmentation, output cropping.

images, masks[, weights] -> cache -> shuffle -> repeat -> random tile + augmentation (one
stateless seed per example) -> masks and weights cropped to the model's output -> batch.
Images and masks follow :mod:`keras_unet.images` (``as_image``, ``as_mask``); pixel weights
are float32 ``(H, W)``.
"""

import numpy as np
import tensorflow as tf

from keras_unet.augment import Augmentation
from keras_unet.checks import check_int, fail
from keras_unet.images import as_image, as_mask

#: The spatial axes of an image (height, width): tiles, mirroring and crops act on them.
SPATIAL = 2
_KINDS = {"binary": "binary", "multiclass": "class indices", "multilabel": "multilabel"}


def _mode(mask):
    """The :data:`keras_unet.images.MASK_MODES` mode of a mask in the package convention."""
    if mask.dtype == np.int32:
        return "multiclass"
    return "binary" if mask.shape[-1] == 1 else f"multilabel ({mask.shape[-1]} labels)"


def _as_weights(array, where):
    array = np.asarray(array)
    array = array[..., 0] if array.ndim == SPATIAL + 1 and array.shape[-1] == 1 else array
    if array.ndim != SPATIAL or array.dtype.kind not in "iuf":
        raise ValueError(f"{where}: pixel weights must be numbers of shape (height, width); "
                         f"got {array.dtype} {array.shape}")
    if not np.isfinite(array).all() or array.min() < 0:
        raise ValueError(f"{where}: pixel weights must be finite and >= 0")
    return array.astype(np.float32)


def _examples(images, masks, weights, mask_options):
    """Checked lists of (image, mask[, weights]) arrays."""
    if len(images) != len(masks):
        raise ValueError(f"images and masks differ in number: {len(images)} and {len(masks)}")
    if weights is not None and len(weights) != len(images):
        raise ValueError(f"images and weights differ in number: {len(images)} and {len(weights)}")
    if len(images) == 0:
        raise ValueError("images is empty: nothing to make a dataset of")
    examples = []
    for i in range(len(images)):
        image = as_image(images[i], f"images[{i}]")
        mask = as_mask(masks[i], f"masks[{i}]", **mask_options)
        if image.shape[:SPATIAL] != mask.shape[:SPATIAL]:
            raise ValueError(f"images[{i}] is {image.shape[:SPATIAL]} but masks[{i}] is "
                             f"{mask.shape[:SPATIAL]}")
        first = examples[0] if examples else (image, mask)
        if image.shape[-1] != first[0].shape[-1]:
            raise ValueError(f"images[{i}] has {image.shape[-1]} channels, images[0] has "
                             f"{first[0].shape[-1]}: convert them to one (e.g. gray to RGB)")
        if _mode(mask) != _mode(first[1]):
            kinds = [_KINDS.get(_mode(m), _mode(m)) for m in (mask, first[1])]
            raise ValueError(f"masks[{i}] is {kinds[0]} but masks[0] is {kinds[1]}")
        example = [image, mask]
        if weights is not None:
            example.append(_as_weights(weights[i], f"weights[{i}]"))
            if example[2].shape != mask.shape[:SPATIAL]:
                raise ValueError(f"weights[{i}] is {example[2].shape} but masks[{i}] is "
                                 f"{mask.shape[:SPATIAL]}")
        examples.append(example)
    return examples


def _mirror(array, border):
    """``array`` mirrored outward by ``border`` pixels on each side of its spatial axes."""
    return np.pad(array, [(border, border)] * SPATIAL + [(0, 0)] * (array.ndim - SPATIAL),
                  mode="reflect")


def _random_tile(example, tile, seed):
    """The same random ``tile``-sided window of every array of an example."""
    seeds = tf.random.experimental.stateless_split(seed, SPATIAL)
    ends = tf.shape(example[0])[:SPATIAL] - tile + 1
    starts = [tf.random.stateless_uniform([], seeds[axis], 0, ends[axis], dtype=tf.int32)
              for axis in range(SPATIAL)]
    return [array[tuple(slice(s, s + tile) for s in starts)] for array in example]


def _augmentation(augment):
    if augment is None or augment is False:
        return None
    if augment is True or isinstance(augment, dict):
        return Augmentation(**(augment if isinstance(augment, dict) else {}))
    if not callable(augment):
        fail("augment", "True, False, a dict of Augmentation options or a callable", augment)
    return augment


def make_dataset(images, masks, *, weights=None, batch_size=8, tile=None, augment=True,
                 output_crop=0, cache=True, shuffle=True, repeat=True, seed=None,
                 mask_mode=None, n_classes=None, ignore_index=None):
    """A ``tf.data.Dataset`` of ``(image, mask[, weights])`` batches for ``model.fit``.

    Args:
        images: ``(N, H, W[, C])`` or a list of ``(H, W[, C])`` arrays of any sizes, read by
            :func:`keras_unet.images.as_image` (float32 in [0, 1]).
        masks: the matching masks, read by :func:`keras_unet.images.as_mask` with
            ``mask_mode`` (None infers: float/bool binary or multilabel ``(H, W, L)``,
            integer class indices), ``n_classes`` and ``ignore_index``; one mode for all.
        weights: optional pixel weights ``(H, W)`` (e.g. ``border_weight_map``), cropped and
            augmented with the masks; the loss gets them as ``sample_weight``.
        batch_size: examples per batch. ``tile``: train on random ``tile x tile`` windows
            (needed when sizes differ); None: whole images.
        augment: True (the default :class:`keras_unet.augment.Augmentation`), False, a dict
            of its options, or a callable ``f(image, mask, weights, seed=seed)``.
        output_crop: a valid-padding model's border, ``(tile - output size) // 2`` (92 for
            the paper's 572 -> 388): everything is mirrored outward by it first (the paper's
            extrapolation), and masks and weights are cut by it after augmentation.
        cache, shuffle, repeat: keep the converted arrays in memory (augmentation runs
            anew every epoch); shuffle every epoch; repeat forever (False: one pass, with
            the last partial batch). ``seed``: an int for identical batches on every run.

    Raises ValueError naming the example (``masks[0]``) or the argument at fault.

    Example:
        >>> images = np.random.default_rng(0).random((4, 64, 64, 1)).astype("float32")
        >>> ds = make_dataset(images, images > 0.5, batch_size=2, tile=32, output_crop=4)
        >>> [tuple(t.shape) for t in next(iter(ds))]
        [(2, 32, 32, 1), (2, 24, 24, 1)]
    """
    crop = check_int(output_crop, "output_crop", 0)
    mask_options = dict(mode=mask_mode, n_classes=n_classes, ignore_index=ignore_index)
    examples = _examples(images, masks, weights, mask_options)
    if crop:  # the paper's mirroring: the input sees past the image's edges
        examples = [[_mirror(array, crop) for array in example] for example in examples]
    sizes = {example[0].shape[:SPATIAL] for example in examples}
    if tile is not None:
        check_int(tile, "tile")
        for i, example in enumerate(examples):
            if min(example[0].shape[:SPATIAL]) < tile:
                size = tuple(n - 2 * crop for n in example[0].shape[:SPATIAL])
                mirrored = f" mirrored by output_crop={crop}" if crop else ""
                raise ValueError(f"tile {tile} is larger than images[{i}], {size}{mirrored}: "
                                 f"choose tile <= {min(example[0].shape[:SPATIAL])}")
    elif len(sizes) > 1:
        raise ValueError(f"images differ in size ({len(sizes)} sizes, e.g. {sorted(sizes)[:2]})"
                         f": give tile= to train on random tiles")
    side = tile if tile is not None else min(min(s) for s in sizes)
    if 2 * crop >= side:  # no output pixel left: Keras would fail deep inside
        raise ValueError(
            f"output_crop must be an integer >= 0 smaller than half the tile ({side}); got "
            f"{crop!r}: the tile leaves no output. For a valid-padding model the tile must be "
            f"a size it takes, at least keras_unet.model.smallest_input_size(depth, 'valid')")
    check_int(batch_size, "batch_size")
    augmentation = _augmentation(augment)
    signature = tuple(tf.TensorSpec([None] * SPATIAL + list(a.shape[SPATIAL:]), a.dtype)
                      for a in examples[0])
    if len(sizes) == 1:
        dataset = tf.data.Dataset.from_tensor_slices(tuple(map(np.stack, zip(*examples))))
    else:
        dataset = tf.data.Dataset.from_generator(lambda: map(tuple, examples),
                                                 output_signature=signature)
    dataset = dataset.cache() if cache else dataset
    if shuffle:
        dataset = dataset.shuffle(len(examples), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.repeat() if repeat else dataset
    dataset = tf.data.Dataset.zip((dataset, tf.data.Dataset.random(seed=seed).batch(2)))
    inner = (slice(crop, -crop),) * SPATIAL

    def transform(example, example_seed):
        tile_seed, augment_seed = tf.unstack(tf.random.experimental.stateless_split(example_seed))
        example = list(example) if tile is None else _random_tile(list(example), tile, tile_seed)
        if augmentation is not None:
            example = list(augmentation(*example, seed=augment_seed))
        if crop:
            example[1:] = [array[inner] for array in example[1:]]
        if tile is not None:  # static shapes for the model's input
            sides = [tile] + [tile - 2 * crop] * (len(example) - 1)
            example = [tf.ensure_shape(a, [side] * SPATIAL + a.shape[SPATIAL:])
                       for side, a in zip(sides, example)]
        return tuple(example)

    dataset = dataset.map(transform, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return dataset.batch(batch_size, drop_remainder=repeat).prefetch(tf.data.AUTOTUNE)
