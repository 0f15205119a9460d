"""tf.data pipelines from arrays: tiles, aligned augmentation, output cropping.

:func:`make_dataset` turns images and masks (and optionally the paper's pixel weights)
into a ``tf.data.Dataset`` ready for ``model.fit``:

    images, masks  ->  cache  ->  shuffle  ->  repeat  ->  random tile + augmentation
    (parallel, one stateless seed per example)  ->  crop masks/weights to the model's
    output  ->  batch  ->  prefetch

Conventions (as everywhere in the package): images become float32 in [0, 1],
``(H, W, C)``; a *float or bool* mask is binary ({0, 1}, float32 ``(H, W, 1)``); an
*integer* mask holds class indices (int32 ``(H, W, 1)``); pixel weights are float32
``(H, W)``.
"""

import numpy as np
import tensorflow as tf

from keras_unet.augment import Augmentation
from keras_unet.images import to_float_image


# ------------------------------------------------------------------- conversion


def _as_image(array, where):
    """One image as float32 (H, W, C) in [0, 1] (see images.to_float_image)."""
    array = np.asarray(array)
    if array.ndim not in (2, 3):
        raise ValueError(f"{where}: an image must be (height, width[, channels]); got shape {array.shape}")
    return to_float_image(array, where)


def _as_mask(array, where):
    """One mask: float32 {0, 1} (binary) or int32 class indices, (H, W, 1)."""
    array = np.asarray(array)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] != 1:
        raise ValueError(
            f"{where}: a mask must be (height, width) or (height, width, 1); got shape "
            f"{array.shape} (one-hot or colour masks: use keras_unet.images.from_folder "
            f"with a palette, or argmax)")
    if array.dtype == bool:
        return array.astype(np.float32)
    if np.issubdtype(array.dtype, np.floating):
        if np.isnan(array).any():
            raise ValueError(f"{where}: the mask contains NaN")
        values = np.unique(array)
        if not np.isin(values, (0.0, 1.0)).all():
            raise ValueError(
                f"{where}: a float mask is binary and must hold only 0 and 1; found "
                f"{values[:6].tolist()}. Class indices must be integers")
        return array.astype(np.float32)
    if np.issubdtype(array.dtype, np.integer):
        if array.min() < 0:
            raise ValueError(f"{where}: class indices must be >= 0; found {int(array.min())}")
        if array.dtype == np.uint8 and set(np.unique(array).tolist()) == {0, 255}:
            raise ValueError(
                f"{where}: the mask holds 0 and 255: for a binary mask pass (mask > 0) "
                f"(float or bool); integer masks are class indices")
        return array.astype(np.int32)
    raise ValueError(f"{where}: masks must be bool, float {{0, 1}} or integer class indices; "
                     f"got dtype {array.dtype}")


def _as_weights(array, where):
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 2 or not (np.issubdtype(array.dtype, np.floating)
                               or np.issubdtype(array.dtype, np.integer)):
        raise ValueError(
            f"{where}: pixel weights must be numbers of shape (height, width); got "
            f"{array.dtype} {array.shape}")
    if not np.isfinite(array).all() or array.min() < 0:
        raise ValueError(f"{where}: pixel weights must be finite and >= 0")
    return array.astype(np.float32)


def _examples(images, masks, weights):
    """Checked lists of (image, mask[, weights]) arrays."""
    if len(images) != len(masks):
        raise ValueError(f"images and masks differ in number: {len(images)} and {len(masks)}")
    if weights is not None and len(weights) != len(images):
        raise ValueError(f"images and weights differ in number: {len(images)} and {len(weights)}")
    if len(images) == 0:
        raise ValueError("images is empty: nothing to make a dataset of")
    examples, kind, channels = [], None, None
    for i in range(len(images)):
        image = _as_image(images[i], f"images[{i}]")
        mask = _as_mask(masks[i], f"masks[{i}]")
        if image.shape[:2] != mask.shape[:2]:
            raise ValueError(f"images[{i}] is {image.shape[:2]} but masks[{i}] is {mask.shape[:2]}")
        if channels is None:
            channels, kind = image.shape[-1], mask.dtype
        if image.shape[-1] != channels:
            raise ValueError(
                f"images[{i}] has {image.shape[-1]} channels, images[0] has {channels}: "
                f"convert them to one (e.g. gray to RGB)")
        if mask.dtype != kind:
            raise ValueError(
                f"masks[{i}] is {'binary' if mask.dtype == np.float32 else 'class indices'} "
                f"but masks[0] is {'binary' if kind == np.float32 else 'class indices'}")
        example = [image, mask]
        if weights is not None:
            w = _as_weights(weights[i], f"weights[{i}]")
            if w.shape != mask.shape[:2]:
                raise ValueError(f"weights[{i}] is {w.shape} but masks[{i}] is {mask.shape[:2]}")
            example.append(w)
        examples.append(example)
    return examples


def _mirror(array, border):
    """``array`` mirrored outward by ``border`` pixels on each side of its first two axes."""
    widths = [(border, border)] * 2 + [(0, 0)] * (array.ndim - 2)
    return np.pad(array, widths, mode="reflect")


# --------------------------------------------------------------------- pipeline


def _augmentation(augment):
    if augment is None or augment is False:
        return None
    if augment is True:
        return Augmentation()
    if isinstance(augment, dict):
        return Augmentation(**augment)
    if callable(augment):
        return augment
    raise ValueError(
        f"augment must be True, False, a dict of Augmentation options or a callable; got {augment!r}")


def _random_tile(example, tile, seed):
    """The same random tile x tile window of every array of an example."""
    height, width = tf.shape(example[0])[0], tf.shape(example[0])[1]
    seeds = tf.random.experimental.stateless_split(seed, 2)
    top = tf.random.stateless_uniform([], seeds[0], 0, height - tile + 1, dtype=tf.int32)
    left = tf.random.stateless_uniform([], seeds[1], 0, width - tile + 1, dtype=tf.int32)
    return [array[top:top + tile, left:left + tile] for array in example]


def make_dataset(images, masks, *, weights=None, batch_size=8, tile=None, augment=True,
                 output_crop=0, cache=True, shuffle=True, repeat=True, seed=None):
    """A ``tf.data.Dataset`` of ``(image, mask)`` or ``(image, mask, pixel_weights)``
    batches for ``model.fit``.

    Args:
        images: an array ``(N, H, W[, C])`` or a list of ``(H, W[, C])`` arrays of any
            sizes: uint8, uint16, or float in [0, 1]. They become float32 in [0, 1].
        masks: the matching masks: float or bool {0, 1} for binary segmentation
            (float32 ``(H, W, 1)`` out), integer class indices for multi-class (int32
            ``(H, W, 1)`` out).
        weights: optional per-pixel weights ``(H, W)`` (e.g.
            :func:`keras_unet.weights.border_weight_map`), cropped and augmented with
            the masks and passed to the loss as ``sample_weight``.
        batch_size: examples per batch.
        tile: train on random ``tile x tile`` windows (needed when images differ in
            size, and to fit large images in memory); ``None`` uses whole images.
        augment: ``True`` (the default :class:`keras_unet.augment.Augmentation`:
            flips, rotations, scaling, the paper's elastic deformation, intensity),
            ``False``, a dict of ``Augmentation`` options, or a callable
            ``f(image, mask, weights, seed=seed)`` returning the same.
        output_crop: for a valid-padding model, the pixels its convolutions consume
            on each side, ``(tile - output_size(tile, depth, "valid")) // 2`` (92 for
            the paper's 572 -> 388). Images, masks and weights are first mirrored
            outward by this many pixels, as the paper extrapolates the missing context
            (so a 572 tile fits a 512 image, and every image pixel can be predicted);
            after augmentation, masks and weights are cut by it on each side to match
            the model's smaller output.
        cache: keep the converted arrays in memory (augmentation runs after the
            cache, anew every epoch).
        shuffle: shuffle the examples every epoch.
        repeat: repeat forever (then give ``steps_per_epoch`` to ``fit``); ``False``
            for one pass, e.g. validation.
        seed: an int for identical batches on every run; ``None`` for fresh randomness.

    Returns:
        A ``tf.data.Dataset`` of batched tuples, prefetched.

    Raises:
        ValueError: naming the example (``images[3]``, ``masks[0]`` ...) and the
            problem: different counts or sizes, NaN, unknown mask values, wrong dtypes
            or channel counts, a tile larger than an image, a crop larger than a tile.

    Example:
        >>> import numpy as np
        >>> images = np.random.default_rng(0).random((4, 64, 64, 1)).astype("float32")
        >>> masks = images > 0.5
        >>> ds = make_dataset(images, masks, batch_size=2, tile=32, output_crop=4, seed=0)
        >>> image, mask = next(iter(ds))
        >>> tuple(image.shape), tuple(mask.shape), mask.dtype.name
        ((2, 32, 32, 1), (2, 24, 24, 1), 'float32')
    """
    if isinstance(output_crop, bool) or not isinstance(output_crop, int) or output_crop < 0:
        raise ValueError(f"output_crop must be an integer >= 0; got {output_crop!r}")
    examples = _examples(images, masks, weights)
    if output_crop:  # the paper's mirroring: the input sees past the image's edges
        examples = [[_mirror(array, output_crop) for array in example] for example in examples]
    sizes = {example[0].shape[:2] for example in examples}
    if tile is not None:
        if isinstance(tile, bool) or not isinstance(tile, int) or tile < 1:
            raise ValueError(f"tile must be a positive integer or None; got {tile!r}")
        for i, example in enumerate(examples):
            if min(example[0].shape[:2]) < tile:
                height, width = (n - 2 * output_crop for n in example[0].shape[:2])
                raise ValueError(
                    f"tile {tile} is larger than images[{i}], {(height, width)}"
                    + (f" mirrored by output_crop={output_crop}" if output_crop else "")
                    + f": choose tile <= {min(example[0].shape[:2])}")
    elif len(sizes) > 1:
        raise ValueError(
            f"images differ in size ({len(sizes)} sizes, e.g. {sorted(sizes)[:2]}): give tile= "
            f"to train on random tiles")
    side = tile if tile is not None else min(min(s) for s in sizes)
    if 2 * output_crop >= side:  # no output pixel left: Keras would fail deep inside
        raise ValueError(
            f"output_crop must be an integer >= 0 smaller than half the tile ({side}); "
            f"got {output_crop!r}: the tile leaves no output. For a valid-padding model the "
            f"tile must be a size it takes, at least keras_unet.model.smallest_input_size("
            f"depth, 'valid')")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")
    augmentation = _augmentation(augment)

    channels = examples[0][0].shape[-1]
    mask_dtype = tf.as_dtype(examples[0][1].dtype)
    signature = (tf.TensorSpec([None, None, channels], tf.float32),
                 tf.TensorSpec([None, None, 1], mask_dtype))
    if weights is not None:
        signature += (tf.TensorSpec([None, None], tf.float32),)
    if len(sizes) == 1:
        dataset = tf.data.Dataset.from_tensor_slices(
            tuple(np.stack(arrays) for arrays in zip(*examples)))
    else:
        dataset = tf.data.Dataset.from_generator(lambda: (tuple(e) for e in examples),
                                                 output_signature=signature)
    if cache:
        dataset = dataset.cache()
    if shuffle:
        dataset = dataset.shuffle(len(examples), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    seeds = tf.data.Dataset.random(seed=seed).batch(2)
    dataset = tf.data.Dataset.zip((dataset, seeds))

    def transform(example, example_seed):
        example = list(example)
        tile_seed, augment_seed = tf.unstack(tf.random.experimental.stateless_split(example_seed, 2))
        if tile is not None:
            example = _random_tile(example, tile, tile_seed)
        if augmentation is not None:
            example = list(augmentation(*example, seed=augment_seed))
        if output_crop:
            example[1:] = [array[output_crop:-output_crop, output_crop:-output_crop]
                           for array in example[1:]]
        if tile is not None:  # static shapes for the model's input
            out = tile - 2 * output_crop
            example = [tf.ensure_shape(array, [tile if i == 0 else out] * 2 + array.shape[2:])
                       for i, array in enumerate(example)]
        return tuple(example)

    dataset = dataset.map(transform, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return dataset.batch(batch_size, drop_remainder=repeat).prefetch(tf.data.AUTOTUNE)
