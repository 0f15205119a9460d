"""tf.data pipelines from arrays: images, masks[, weights] -> shuffled passes ->
random tile (optionally centred on foreground) + aligned augmentation (one stateless seed per
example) -> masks and weights cropped to the model's output -> batch. 2D images and 3D volumes
alike, per axis. Arrays follow :mod:`keras_unet.images`.
"""

import itertools
import numbers

import numpy as np
import tensorflow as tf

from keras_unet.augment import Augmentation
from keras_unet.checks import check_choice, check_int, check_number, fail
from keras_unet.images import as_image, as_mask

#: The names of the spatial axes; a 2D image has the last two.
AXES = ("depth", "height", "width")
#: At most this many foreground voxels per example are kept as window centres (evenly spread).
MAX_CENTRES = 10_000


def _kind(mask):
    """What a mask in the package convention holds, in words."""
    labels = "binary" if mask.shape[-1] == 1 else f"multilabel ({mask.shape[-1]} labels)"
    return "class indices" if mask.dtype == np.int32 else labels


def _per_axis(value, argument, rank, minimum, count):
    """``value`` (an int, or a tuple of ``rank`` ints) as a tuple of ``rank`` ints."""
    if not isinstance(value, (tuple, list)):
        return (check_int(value, argument, minimum),) * rank
    if len(value) != rank or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool)
                                     and v >= minimum for v in value):
        fail(argument, f"an integer >= {minimum} or a tuple of {count} of them", value)
    return tuple(int(v) for v in value)


def _as_weights(array, i, shape):
    """``weights[i]`` as float32 pixel weights of ``shape`` (its mask's spatial shape)."""
    array, where, rank = np.asarray(array), f"weights[{i}]", len(shape)
    array = array[..., 0] if array.shape[rank:] == (1,) else array
    if array.ndim != rank or array.dtype.kind not in "iuf":
        raise ValueError(f"{where}: pixel weights must be numbers of shape "
                         f"({', '.join(AXES[-rank:])}); got {array.dtype} {array.shape}")
    if not np.isfinite(array).all() or array.min() < 0:
        raise ValueError(f"{where}: pixel weights must be finite and >= 0")
    if array.shape != shape:
        raise ValueError(f"{where} is {array.shape} but masks[{i}] is {shape}")
    return array.astype(np.float32)


def _examples(images, masks, weights, rank, **mask_options):
    """Checked lists of (image, mask[, weights]) arrays of ``rank`` spatial axes."""
    for name, items in (("masks", masks), ("weights", weights)):
        if items is not None and len(items) != len(images):
            raise ValueError(f"images and {name} differ in number: {len(images)} and {len(items)}")
    if len(images) == 0:
        raise ValueError("images is empty: nothing to make a dataset of")
    examples, axes = [], ", ".join(a[0].upper() for a in AXES[-rank:])
    for i in range(len(images)):
        if not rank <= np.ndim(images[i]) <= rank + 1:
            raise ValueError(f"images[{i}] has shape {np.shape(images[i])}, not ({axes}) or "
                             f"({axes}, C): images of another rank than spatial_dims={rank}")
        image = as_image(images[i], f"images[{i}]", spatial_dims=rank)
        mask = as_mask(masks[i], f"masks[{i}]", spatial_dims=rank, **mask_options)
        if image.shape[:rank] != mask.shape[:rank]:
            raise ValueError(f"images[{i}] is {image.shape[:rank]} but masks[{i}] is "
                             f"{mask.shape[:rank]}")
        first = examples[0] if examples else (image, mask)
        if image.shape[-1] != first[0].shape[-1]:
            raise ValueError(f"images[{i}] has {image.shape[-1]} channels, images[0] has "
                             f"{first[0].shape[-1]}: convert them to one (e.g. gray to RGB)")
        if _kind(mask) != _kind(first[1]):
            raise ValueError(f"masks[{i}] is {_kind(mask)} but masks[0] is {_kind(first[1])}")
        extra = [] if weights is None else [_as_weights(weights[i], i, mask.shape[:rank])]
        examples.append([image, mask, *extra])
    return examples


def _centres(mask, ignore_index, shift):
    """Up to MAX_CENTRES foreground voxels (> 0, not ``ignore_index``) of ``mask``: int32
    ``(K, rank)`` coordinates, moved by ``shift`` (the mirroring)."""
    labelled = (mask > 0) & (mask != ignore_index) if ignore_index is not None else mask > 0
    where = np.argwhere(labelled.any(-1))
    if len(where) > MAX_CENTRES:
        where = where[np.linspace(0, len(where) - 1, MAX_CENTRES).astype(int)]
    return (where + shift).astype(np.int32)


def _mirror(array, crop):
    """``array`` mirrored outward by ``crop[axis]`` pixels on each side of its spatial axes."""
    return np.pad(array, [(c, c) for c in crop] + [(0, 0)] * (array.ndim - len(crop)), "reflect")


def _random_tile(example, tile, seed, foreground):
    """The same random ``tile`` window of every array of an example. With ``foreground``, the
    example's last item holds its foreground coordinates, and that share of windows is centred
    on one of them (moved to stay in the image); examples without foreground get random ones."""
    rank = len(tile)
    seeds = tf.random.experimental.stateless_split(seed, rank + 2 * bool(foreground))
    ends = tf.shape(example[0])[:rank] - tile + 1
    starts = tf.stack([tf.random.stateless_uniform([], seeds[axis], 0, ends[axis], dtype=tf.int32)
                       for axis in range(rank)])
    if foreground:
        *example, centres = example
        n = tf.shape(centres)[0]
        pick = tf.random.stateless_uniform([], seeds[rank], 0, tf.maximum(n, 1), dtype=tf.int32)
        centre = tf.concat([centres, tf.zeros([1, rank], tf.int32)], 0)[pick]
        centred = tf.clip_by_value(centre - np.array(tile, np.int32) // 2, 0, ends - 1)
        chosen = (tf.random.stateless_uniform([], seeds[rank + 1]) < foreground) & (n > 0)
        starts = tf.where(chosen, centred, starts)
    return [array[tuple(slice(starts[a], starts[a] + tile[a]) for a in range(rank))]
            for array in example]


def _augmentation(augment):
    if augment is True or isinstance(augment, dict):
        return Augmentation(**({} if augment is True else augment))
    if augment is not None and augment is not False and not callable(augment):
        fail("augment", "True, False, a dict of Augmentation options or a callable", augment)
    return augment or None


def make_dataset(images, masks, *, weights=None, batch_size=8, tile=None, augment=True,
                 output_crop=0, shuffle=True, repeat=True, seed=None,
                 mask_mode=None, n_classes=None, ignore_index=None, foreground=None,
                 spatial_dims=None, shard=None):
    """A ``tf.data.Dataset`` of ``(image, mask[, weights])`` batches for ``model.fit``.

    ``images`` ``(N, H, W[, C])`` or a list of any sizes (volumes ``(D, H, W[, C])`` with
    ``spatial_dims=3``; None: the length of a ``tile`` tuple, else 2) and their ``masks`` are
    read by ``images.as_image`` and ``images.as_mask`` (``mask_mode``, ``n_classes``,
    ``ignore_index``; one mode for all); optional pixel ``weights`` ``(H, W)`` or ``(D, H, W)``
    (the loss's ``sample_weight``) go with the masks. ``tile``: random windows, a side or one
    per axis (None: whole images of one size). ``foreground``: that share (in [0, 1]; nnU-Net:
    1/3) of windows is centred on a random foreground voxel (mask > 0, not ``ignore_index``),
    moved to stay in the image. ``augment``: True (``Augmentation()``), False, a dict of its
    options or ``f(image, mask, weights, seed=seed)``. ``output_crop`` (a side or one per axis):
    a valid-padding model's border (92 for 572 -> 388): all is mirrored outward by it, then
    masks and weights cut by it. ``repeat=False``: one pass, the last batch partial. The same
    ``seed`` gives the same batches, from every iterator. ``shard=(count, index)``: the
    ``index``-th block of ``batch_size`` examples in every ``count * batch_size`` (one of
    ``count`` processes' share of the same seed's batches). Errors name the argument or the
    example at fault.

    Example:
        >>> images = np.random.default_rng(0).random((4, 64, 64, 1)).astype("float32")
        >>> ds = make_dataset(images, images > 0.5, batch_size=2, tile=32, output_crop=4)
        >>> [tuple(t.shape) for t in next(iter(ds))]  # images, masks cropped by 4
        [(2, 32, 32, 1), (2, 24, 24, 1)]
        >>> volumes = np.random.default_rng(0).random((4, 16, 64, 64), "float32")
        >>> ds = make_dataset(volumes, volumes > 0.5, batch_size=2, tile=(8, 32, 32),
        ...                   output_crop=(2, 4, 4), augment=False, foreground=0.33)
        >>> [tuple(t.shape) for t in next(iter(ds))]
        [(2, 8, 32, 32, 1), (2, 4, 24, 24, 1)]
    """
    given, sequence = tile, isinstance(tile, (tuple, list))
    if spatial_dims is None:
        rank, count = (len(tile) if sequence and len(tile) in (2, 3) else 2), "2 or 3"
    else:
        rank = count = check_choice(spatial_dims, (2, 3), "spatial_dims")
    tile = tile if tile is None else _per_axis(tile, "tile", rank, 1, count)
    crop = _per_axis(output_crop, "output_crop", rank, 0, rank)
    if foreground is not None:
        foreground = check_number(foreground, "foreground", 0, 1)
        if foreground and tile is None:
            fail("foreground", "None or 0 without tile= (whole images: no windows to centre)",
                 foreground)
    examples = _examples(images, masks, weights, rank, mode=mask_mode, n_classes=n_classes,
                         ignore_index=ignore_index)
    # foreground coordinates travel with their example, as its last item
    centres = [(_centres(e[1], ignore_index, crop),) if foreground else () for e in examples]
    if any(crop):  # the paper's mirroring: the input sees past the image's edges
        examples = [[_mirror(array, crop) for array in example] for example in examples]
    sizes = {example[0].shape[:rank] for example in examples}
    if tile is None and len(sizes) > 1:
        raise ValueError(f"images differ in size ({len(sizes)} sizes, e.g. {sorted(sizes)[:2]})"
                         f": give tile= to train on random tiles")
    sides = tile or next(iter(sizes))
    small = [(n, i, a) for i, e in enumerate(examples) for a, n in enumerate(e[0].shape[:rank])
             if n < sides[a]]
    if small:  # the smallest extent at fault, and its example
        n, i, a = min(small)
        size = tuple(int(s) - 2 * c for s, c in zip(examples[i][0].shape, crop))
        mirrored = f" mirrored by output_crop={output_crop}" if any(crop) else ""
        along = f", along axis {a} ({AXES[a - rank]})" if sequence or rank == 3 else ""
        raise ValueError(f"tile {given} is larger than images[{i}], "
                         f"{size}{mirrored}{along}: choose tile{f'[{a}]' * sequence} <= {n}")
    if any(2 * c >= s for c, s in zip(crop, sides)):  # no output pixel left
        shown = f"({sides[0]})" if len(set(sides)) == 1 else f"{sides}"
        words = f"{rank} integers" if isinstance(output_crop, (tuple, list)) else "an integer"
        fail("output_crop", f"{words} >= 0 smaller than half the tile {shown}", output_crop)
    check_int(batch_size, "batch_size")
    augmentation = _augmentation(augment)
    seed = int(np.random.randint(2**31)) if seed is None else seed  # one seed for all draws
    shape = list(next(iter(sizes))) if len(sizes) == 1 else [None] * rank
    spec = tuple(tf.TensorSpec(shape + list(a.shape[rank:]), a.dtype) for a in examples[0]) + (
        tf.TensorSpec([None, rank], tf.int32),) * bool(foreground)  # and the centres

    def passes():  # anew for each iterator: every one yields the same (tf.data's reshuffle
        order = np.random.default_rng(seed)  # draws from a generator all iterators advance)
        for _ in itertools.count() if repeat else range(1):
            for i in order.permutation(len(examples)) if shuffle else range(len(examples)):
                yield tuple(examples[i]) + centres[i]

    dataset = tf.data.Dataset.from_generator(passes, output_signature=spec)
    dataset = tf.data.Dataset.zip((dataset, tf.data.Dataset.random(seed=seed).batch(2)))
    if shard is not None and not (isinstance(shard, (tuple, list)) and len(shard) == 2 and all(
            isinstance(n, numbers.Integral) for n in shard) and 0 <= shard[1] < shard[0]):
        fail("shard", "(count, index), integers with 0 <= index < count", shard)
    shards, index = shard or (1, 0)

    def mine(i):  # after the seeds: the shards' batches, side by side, are the unsharded ones
        return i // batch_size % shards == index

    if shards > 1:
        dataset = dataset.enumerate().filter(lambda i, _: mine(i)).map(lambda _, example: example)
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(  # known, as Keras wants
        tf.data.INFINITE_CARDINALITY if repeat else sum(map(mine, range(len(examples))))))
    inner = tuple(slice(c, -c or None) for c in crop)

    def transform(example, example_seed):
        tile_seed, augment_seed = tf.unstack(tf.random.experimental.stateless_split(example_seed))
        example = list(example) if tile is None else _random_tile(
            list(example), tile, tile_seed, foreground)
        if augmentation is not None:
            example = list(augmentation(*example, seed=augment_seed))
        if any(crop):
            example[1:] = [array[inner] for array in example[1:]]
        if tile is not None:  # static shapes for the model's input
            example = [tf.ensure_shape(a, [t - 2 * c * (i > 0) for t, c in zip(tile, crop)]
                                       + a.shape[rank:]) for i, a in enumerate(example)]
        return tuple(example)

    dataset = dataset.map(transform, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return dataset.batch(batch_size, drop_remainder=repeat).prefetch(tf.data.AUTOTUNE)
