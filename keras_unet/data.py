"""tf.data pipelines from arrays: images, masks[, weights] -> cache -> shuffle -> repeat ->
random tile + aligned augmentation (one stateless seed per example) -> masks and weights
cropped to the model's output -> batch. Arrays follow :mod:`keras_unet.images`.
"""

import numpy as np
import tensorflow as tf

from keras_unet.augment import Augmentation
from keras_unet.checks import check_int, fail
from keras_unet.images import as_image, as_mask

#: The spatial axes of an image (height, width): tiles, mirroring and crops act on them.
SPATIAL = 2


def _kind(mask):
    """What a mask in the package convention holds, in words."""
    labels = "binary" if mask.shape[-1] == 1 else f"multilabel ({mask.shape[-1]} labels)"
    return "class indices" if mask.dtype == np.int32 else labels


def _as_weights(array, i, shape):
    """``weights[i]`` as float32 pixel weights of ``shape`` (its mask's height and width)."""
    array, where = np.asarray(array), f"weights[{i}]"
    array = array[..., 0] if array.shape[SPATIAL:] == (1,) else array
    if array.ndim != SPATIAL or array.dtype.kind not in "iuf":
        raise ValueError(f"{where}: pixel weights must be numbers of shape (height, width); "
                         f"got {array.dtype} {array.shape}")
    if not np.isfinite(array).all() or array.min() < 0:
        raise ValueError(f"{where}: pixel weights must be finite and >= 0")
    if array.shape != shape:
        raise ValueError(f"{where} is {array.shape} but masks[{i}] is {shape}")
    return array.astype(np.float32)


def _examples(images, masks, weights, **mask_options):
    """Checked lists of (image, mask[, weights]) arrays."""
    for name, items in (("masks", masks), ("weights", weights)):
        if items is not None and len(items) != len(images):
            raise ValueError(f"images and {name} differ in number: {len(images)} and {len(items)}")
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
        if _kind(mask) != _kind(first[1]):
            raise ValueError(f"masks[{i}] is {_kind(mask)} but masks[0] is {_kind(first[1])}")
        extra = [] if weights is None else [_as_weights(weights[i], i, mask.shape[:SPATIAL])]
        examples.append([image, mask, *extra])
    return examples


def _mirror(array, n):
    """``array`` mirrored outward by ``n`` pixels on each side of its spatial axes."""
    return np.pad(array, [(n, n)] * SPATIAL + [(0, 0)] * (array.ndim - SPATIAL), "reflect")


def _random_tile(example, tile, seed):
    """The same random ``tile``-sided window of every array of an example."""
    seeds = tf.random.experimental.stateless_split(seed, SPATIAL)
    ends = tf.shape(example[0])[:SPATIAL] - tile + 1
    starts = [tf.random.stateless_uniform([], seeds[axis], 0, ends[axis], dtype=tf.int32)
              for axis in range(SPATIAL)]
    return [array[tuple(slice(s, s + tile) for s in starts)] for array in example]


def _augmentation(augment):
    if augment is True or isinstance(augment, dict):
        return Augmentation(**({} if augment is True else augment))
    if augment is not None and augment is not False and not callable(augment):
        fail("augment", "True, False, a dict of Augmentation options or a callable", augment)
    return augment or None


def make_dataset(images, masks, *, weights=None, batch_size=8, tile=None, augment=True,
                 output_crop=0, cache=True, shuffle=True, repeat=True, seed=None,
                 mask_mode=None, n_classes=None, ignore_index=None):
    """A ``tf.data.Dataset`` of ``(image, mask[, weights])`` batches for ``model.fit``.

    ``images`` ``(N, H, W[, C])`` or a list of any sizes and their ``masks`` are read by
    ``images.as_image`` and ``images.as_mask`` (``mask_mode``, ``n_classes``, ``ignore_index``;
    one mode for all); optional pixel ``weights`` ``(H, W)`` (the loss's ``sample_weight``)
    go with the masks. ``tile``: random windows (None: whole images of one size). ``augment``:
    True (``Augmentation()``), False, a dict of its options or ``f(image, mask, weights,
    seed=seed)``. ``output_crop``: a valid-padding model's border (92 for 572 -> 388): all is
    mirrored outward by it, then masks and weights cut by it. ``repeat=False``: one pass, the
    last batch partial. Errors name the argument or the example at fault (``masks[0]``).

    Example:
        >>> images = np.random.default_rng(0).random((4, 64, 64, 1)).astype("float32")
        >>> ds = make_dataset(images, images > 0.5, batch_size=2, tile=32, output_crop=4)
        >>> [tuple(t.shape) for t in next(iter(ds))]  # images, masks cropped by 4
        [(2, 32, 32, 1), (2, 24, 24, 1)]
    """
    crop = check_int(output_crop, "output_crop", 0)
    examples = _examples(images, masks, weights, mode=mask_mode, n_classes=n_classes,
                         ignore_index=ignore_index)
    if crop:  # the paper's mirroring: the input sees past the image's edges
        examples = [[_mirror(array, crop) for array in example] for example in examples]
    sizes = {example[0].shape[:SPATIAL] for example in examples}
    if tile is None and len(sizes) > 1:
        raise ValueError(f"images differ in size ({len(sizes)} sizes, e.g. {sorted(sizes)[:2]})"
                         f": give tile= to train on random tiles")
    shortest = [min(example[0].shape[:SPATIAL]) for example in examples]
    i = int(np.argmin(shortest))  # the smallest image
    side = shortest[i] if tile is None else check_int(tile, "tile")
    if side > shortest[i]:
        size = tuple(n - 2 * crop for n in examples[i][0].shape[:SPATIAL])
        mirrored = f" mirrored by output_crop={crop}" if crop else ""
        raise ValueError(f"tile {tile} is larger than images[{i}], {size}{mirrored}: choose "
                         f"tile <= {shortest[i]}")
    if 2 * crop >= side:  # no output pixel left (the tile must be one the model takes)
        fail("output_crop", f"an integer >= 0 smaller than half the tile ({side})", crop)
    check_int(batch_size, "batch_size")
    augmentation = _augmentation(augment)
    if len(sizes) == 1:
        dataset = tf.data.Dataset.from_tensor_slices(tuple(map(np.stack, zip(*examples))))
    else:
        spec = tuple(tf.TensorSpec([None] * SPATIAL + list(a.shape[SPATIAL:]), a.dtype)
                     for a in examples[0])
        dataset = tf.data.Dataset.from_generator(lambda: map(tuple, examples),
                                                 output_signature=spec)
    dataset = dataset.cache() if cache else dataset
    dataset = dataset.shuffle(len(examples), seed=seed) if shuffle else dataset  # every epoch
    dataset = dataset.repeat() if repeat else dataset
    dataset = tf.data.Dataset.zip((dataset, tf.data.Dataset.random(seed=seed).batch(2)))

    def transform(example, example_seed):
        tile_seed, augment_seed = tf.unstack(tf.random.experimental.stateless_split(example_seed))
        example = list(example) if tile is None else _random_tile(list(example), tile, tile_seed)
        if augmentation is not None:
            example = list(augmentation(*example, seed=augment_seed))
        if crop:
            example[1:] = [array[(slice(crop, -crop),) * SPATIAL] for array in example[1:]]
        if tile is not None:  # static shapes for the model's input
            example = [tf.ensure_shape(a, [tile - 2 * crop * (i > 0)] * SPATIAL + a.shape[SPATIAL:])
                       for i, a in enumerate(example)]
        return tuple(example)

    dataset = dataset.map(transform, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return dataset.batch(batch_size, drop_remainder=repeat).prefetch(tf.data.AUTOTUNE)
