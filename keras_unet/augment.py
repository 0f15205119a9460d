"""Aligned augmentation: one random transform for an image or a volume, its mask and its
pixel weights.

An ``(H, W, C)`` image is 2D, a ``(D, H, W, C)`` volume 3D (axis 0: the slices). Flips and
quarter turns permute pixels; rotation, scale, shift and the paper's elastic deformation
make ONE sampling field applied once (linear along every axis -- bilinear, trilinear -- for
the image and weights, nearest for the mask, mirrored borders); intensity changes the image
only. (Keras's ``RandomElasticTransform`` warps a mask with another field than its image.)
Stateless: one ``seed``, one result.
"""

import difflib
import inspect
import itertools
import math

import numpy as np
import tensorflow as tf

from keras_unet.checks import check_bool, check_choice, check_int, check_number, fail

#: Sub-seed of each random component: switching one option off changes no other draw.
_FLIP_SEED, _AFFINE_SEED, _ELASTIC_SEED, _INTENSITY_SEED, _DEPTH_FLIP_SEED = 1, 2, 3, 4, 5
_fold_in = tf.random.experimental.stateless_fold_in
#: The in-plane axes (rows, columns) of an ``(H, W, C)`` image, which flips and turns
#: permute; a volume's are 1 and 2 (and its depth flip reverses axis 0).
SPATIAL_AXES = (0, 1)
_SWITCHES = ("flip_horizontal", "flip_vertical", "flip_depth", "rotate90", "elastic")
#: The numeric options >= 0, and their upper bound.
_NUMBERS = dict(rotation=180, brightness=1, affine_probability=1,
                elastic_probability=1, intensity_probability=1)
#: The spatial axes by spatial rank: their letters and the words for them.
_AXES = {2: ("H, W", "image's height and width"),
         3: ("D, H, W", "volume's depth, height and width")}


def _factors(value, argument):
    """``None`` (off: (1, 1)) or a pair ``(low, high)`` with ``0 < low <= high``."""
    if value is None:
        return (1.0, 1.0)
    if not hasattr(value, "__len__") or len(value) != 2:
        fail(argument, "None or a pair (low, high) of factors > 0", value)
    low, high = (check_number(v, f"{argument}[{i}]", 0, open_low=True) for i, v in enumerate(value))
    if low > high:
        fail(argument, "a range (low, high) with low <= high", tuple(value))
    return (low, high)


def _sigmas(value):
    """``elastic_sigma``: a number >= 0, or a tuple of one per spatial axis (2 or 3)."""
    if not hasattr(value, "__len__"):
        return check_number(value, "elastic_sigma", 0)
    if len(value) not in (2, 3):
        fail("elastic_sigma", "a number >= 0 or one per spatial axis (2 or 3 numbers)", value)
    return tuple(check_number(v, f"elastic_sigma[{i}]", 0) for i, v in enumerate(value))


def _valid_options(options):
    """A checked, normalised copy of an :class:`Augmentation`'s options."""
    valid = {name: check_bool(options[name], name) for name in _SWITCHES}
    valid.update({name: check_number(options[name], name, 0, high)
                  for name, high in _NUMBERS.items()})
    valid["elastic_sigma"] = _sigmas(options["elastic_sigma"])
    valid["shift"] = check_number(options["shift"], "shift", 0, 1, open_high=True)
    valid["elastic_grid"] = check_int(options["elastic_grid"], "elastic_grid", 2)
    valid.update({name: _factors(options[name], name) for name in ("scale", "contrast", "gamma")})
    pairs = options["mirrored_labels"] or ()
    array = np.array(pairs, object)  # the values as given: check_int sees a bool as a bool
    paired = not pairs or array.shape[1:] == (2,)
    labels = [check_int(v, "mirrored_labels", 0) for v in array.ravel().tolist()] if paired else []
    if not paired or len(set(labels)) < len(labels) or labels and valid["rotate90"]:
        fail("mirrored_labels", "pairs (a, b) of distinct labels, with rotate90=False", pairs)
    valid["mirrored_labels"] = tuple(zip(labels[::2], labels[1::2]))
    return valid


def _mirror(mask, pairs):  # the pairs of labels exchanged: a 1-channel mask's values, else channels
    if mask.shape[-1] != 1:
        swap = {**dict(pairs), **{b: a for a, b in pairs}}
        return tf.gather(mask, [swap.get(c, c) for c in range(mask.shape[-1])], axis=-1)
    for a, b in pairs:
        a, b = tf.cast(a, mask.dtype), tf.cast(b, mask.dtype)
        mask = tf.where(mask == a, b, tf.where(mask == b, a, mask))
    return mask


def _with_channel(tensor, argument, image=None):
    """``tensor`` as (H, W, C) or (D, H, W, C), and whether a channel axis was added (not to
    an image); a mask or weights must have ``image``'s spatial shape."""
    tensor = tf.convert_to_tensor(tensor)
    if image is None:
        if tensor.shape.rank not in (3, 4):
            raise ValueError(f"{argument} must have shape (H, W, C) or (D, H, W, C); "
                             f"got shape {tensor.shape}")
        return tensor, False
    n = image.shape.rank - 1
    letters, words = _AXES[n]
    if tensor.shape.rank not in (n, n + 1):
        raise ValueError(f"{argument} must have shape ({letters}) or ({letters}, C); "
                         f"got shape {tensor.shape}")
    added = tensor.shape.rank == n
    tensor = tensor[..., None] if added else tensor
    if not image.shape[:n].is_compatible_with(tensor.shape[:n]):
        raise ValueError(f"{argument} must have the {words} {image.shape[:n]}; "
                         f"got shape {tensor.shape}")
    return tensor, added


def _source_pixels(coords, image):
    """Mirrored (``d c b | a b c d | c b a``) ``coords`` (one grid per spatial axis): the flat
    index of the first of the 2^n neighbours, the fractions and the flat step of each axis."""
    shape, index, fractions = tf.shape(image), 0, []
    steps = [tf.reduce_prod(shape[axis + 1:len(coords)]) for axis in range(len(coords))]
    for axis, (x, step) in enumerate(zip(coords, steps)):
        last = tf.cast(shape[axis] - 1, tf.float32)
        period = tf.maximum(2.0 * last, 1.0)
        x = tf.math.floormod(tf.abs(x), period)
        x = tf.clip_by_value(tf.where(x > last, period - x, x), 0.0, last)
        index += tf.cast(tf.floor(x), tf.int32) * step
        fractions.append(x - tf.floor(x))
    return index, fractions, steps


def _sample(image, source, method):
    """``image`` read at ``source``: linear along every axis (exact for equal neighbours)
    from the 2^n neighbours, or the nearest of them."""
    index, fractions, steps = source
    n = len(fractions)
    flat = tf.reshape(image, (-1, tf.shape(image)[n]))
    if method == "nearest":
        out = tf.gather(flat, index + sum(tf.cast(f >= 0.5, tf.int32) * s
                                          for f, s in zip(fractions, steps)))
    else:  # the next neighbour only where the fraction is > 0: never past the last pixel
        steps = [tf.cast(f > 0, tf.int32) * s for f, s in zip(fractions, steps)]
        values = [tf.gather(flat, index + sum(s for s, on in zip(steps, bits) if on))
                  for bits in itertools.product((0, 1), repeat=n)]
        for fraction in reversed(fractions):  # the last axis first: pairs of neighbours
            fraction = fraction[..., None]
            values = [a + fraction * (b - a) for a, b in zip(values[::2], values[1::2])]
        out = values[0]
    out.set_shape(index.shape[:n].concatenate(image.shape[n:]))
    return out


def remap(image, coords, method="bilinear"):
    """``out[p] = image[coords[p]]``: ``image`` ``(H, W, C)`` read at ``coords`` ``(H2, W2,
    2)`` (row, column), or a volume ``(D, H, W, C)`` at ``(D2, H2, W2, 3)`` (slice, row,
    column), in pixels, mirrored about the edge pixels outside. ``"bilinear"``: linear along
    every axis (trilinear for a volume; float images); ``"nearest"``: any dtype.

    Example:
        >>> image = tf.reshape(tf.range(4.0), (1, 4, 1))  # one row: 0 1 2 3
        >>> coords = tf.constant([[[0.0, 0.5], [0.0, -1.0], [0.0, 4.0]]])
        >>> remap(image, coords)[..., 0].numpy().tolist()  # between, mirrored left/right
        [[0.5, 1.0, 2.0]]
        >>> volume = tf.reshape(tf.range(3.0), (3, 1, 1, 1))  # slices 0 1 2
        >>> remap(volume, [[[[0.25, 0, 0]]], [[[-2.0, 0, 0]]], [[[3.5, 0, 0]]]]).numpy().ravel()
        array([0.25, 2.  , 0.5 ], dtype=float32)
    """
    check_choice(method, ("bilinear", "nearest"), "method")
    image, _ = _with_channel(image, "image")
    n = image.shape.rank - 1
    coords = tf.convert_to_tensor(coords, tf.float32)
    if coords.shape.rank != n + 1 or coords.shape[-1] not in (n, None):
        letters = _AXES[n][0].replace(", ", "2, ")
        raise ValueError(f"coords must have shape ({letters}2, {n}) for an image of shape "
                         f"{image.shape}; got shape {coords.shape}")
    if method == "bilinear" and not image.dtype.is_floating:
        raise ValueError(
            f"bilinear remap needs a float image; got {image.dtype.name} (use 'nearest')")
    return _sample(image, _source_pixels(tf.unstack(coords, n, axis=-1), image), method)


def _between(u, low, high):  # u uniform in [0, 1)
    return low + u * (high - low)


def _upsample(coarse, size):
    """The coarse vectors ``(grid, ..., n)`` bicubically resized to ``size`` (n spatial sizes);
    in 3D separably: the planes (H, W) of each coarse slice, then along the slices."""
    if coarse.shape.rank == 3:
        return tf.image.resize(coarse, size, method="bicubic")
    planes = tf.image.resize(coarse, size[1:], method="bicubic")  # (grid, H, W, 3)
    columns = tf.reshape(planes, (coarse.shape[0], 1, -1))  # one row of H * W * 3 channels
    deep = tf.image.resize(columns, tf.stack([size[0], 1]), method="bicubic")
    return tf.reshape(deep, tf.concat([size, [3]], 0))


def _sampling_field(seed, image, options):
    """Where each output pixel reads (a grid per spatial axis): the paper's elastic
    displacement (coarse grid vectors, bicubically interpolated), then the inverse scale and
    shift on every axis and the rotation in-plane (rows and columns; about axis 0 in 3D)."""
    n = image.shape.rank - 1
    shape = tf.shape(image)[:n]
    coords = tf.meshgrid(*(tf.range(shape[axis], dtype=tf.float32) for axis in range(n)),
                         indexing="ij")
    if options["elastic"]:
        normal_seed, apply_seed = tf.unstack(tf.random.experimental.stateless_split(
            _fold_in(seed, _ELASTIC_SEED), 2))
        grid, sigma = options["elastic_grid"], options["elastic_sigma"]
        if isinstance(sigma, tuple):  # one per axis
            if len(sigma) != n:
                fail("elastic_sigma", f"a number or {n} numbers for the {_AXES[n][1]}", sigma)
            sigma = tf.constant(sigma, tf.float32)
        coarse = tf.random.stateless_normal((grid,) * n + (n,), normal_seed, stddev=sigma)
        coarse *= tf.cast(tf.random.stateless_uniform((), apply_seed)
                          < options["elastic_probability"], tf.float32)
        moved = _upsample(coarse, shape)
        coords = [x + moved[..., axis] for axis, x in enumerate(coords)]
    if _active(options)[1]:
        u = tf.random.stateless_uniform((3 + n,), _fold_in(seed, _AFFINE_SEED))
        apply, limit = u[0] < options["affine_probability"], options["rotation"] * math.pi / 180
        angle = tf.where(apply, _between(u[1], -limit, limit), 0.0)
        scale = tf.where(apply, _between(u[2], *options["scale"]), 1.0)
        shift = tf.where(apply, _between(u[3:], -options["shift"], options["shift"]), 0.0)
        size = tf.cast(shape, tf.float32)
        centre = (size - 1) / 2
        coords = [x - centre[axis] - shift[axis] * size[axis] for axis, x in enumerate(coords)]
        *deep, y, x = coords
        cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
        coords = [centre[axis] + z / scale for axis, z in enumerate(deep)] + [
            centre[-2] + cos * y + sin * x, centre[-1] - sin * y + cos * x]
    return coords


def _warp(image, mask, weights, seed, options):
    """One sampling field: linear for the image and ``weights`` (a list), nearest for the mask."""
    source = _source_pixels(_sampling_field(seed, image, options), image)
    floats = [tf.cast(_sample(tf.cast(t, tf.float32), source, "bilinear"), t.dtype)
              for t in (image, *weights)]
    return floats[0], _sample(mask, source, "nearest"), floats[1:]


def _active(options):
    """Which stages change anything: flips and turns, affine, elastic, intensity."""
    o, off = options, (1.0, 1.0)
    affine = o["rotation"] > 0 or o["scale"] != off or o["shift"] > 0
    intensity = o["brightness"] > 0 or o["contrast"] != off or o["gamma"] != off
    return (o["flip_horizontal"] or o["flip_vertical"] or o["flip_depth"] or o["rotate90"],
            affine and o["affine_probability"] > 0, o["elastic"],
            intensity and o["intensity_probability"] > 0)


def _flip_rotate(tensors, seed, options):
    """Random flips (of axis 0 too in 3D, by its own sub-seed) and quarter turns in-plane (odd
    ones only if square) of all ``tensors`` together."""
    u = tf.random.stateless_uniform((3,), _fold_in(seed, _FLIP_SEED))
    n = tensors[0].shape.rank - 1
    rows, cols = (axis + n - 2 for axis in SPATIAL_AXES)

    def maybe(condition, transform, tensors):
        return tf.cond(condition, lambda: [transform(t) for t in tensors], lambda: tensors)

    if options["flip_horizontal"]:
        tensors = maybe(u[0] < 0.5, lambda t: tf.reverse(t, [cols]), tensors)
        if pairs := options["mirrored_labels"]:
            tensors[1] = tf.cond(u[0] < 0.5, lambda: _mirror(tensors[1], pairs), lambda: tensors[1])
    if options["flip_vertical"]:
        tensors = maybe(u[1] < 0.5, lambda t: tf.reverse(t, [rows]), tensors)
    if options["flip_depth"] and n == 3:
        flip = tf.random.stateless_uniform((), _fold_in(seed, _DEPTH_FLIP_SEED)) < 0.5
        tensors = maybe(flip, lambda t: tf.reverse(t, [0]), tensors)
    if options["rotate90"]:  # tf.image.rot90 turns the last two axes before the channels
        turns = tf.minimum(tf.cast(u[2] * 4, tf.int32), 3)
        shape = tf.shape(tensors[0])
        turns = tf.where(tf.equal(shape[rows], shape[cols]), turns, 2 * (turns // 2))
        tensors = [tf.ensure_shape(tf.image.rot90(t, turns), t.shape) for t in tensors]
    return list(tensors)


def _adjust_intensity(image, seed, options):
    """Brightness (added), contrast (about the channel means), gamma; then [0, 1]."""
    u = tf.random.stateless_uniform((4,), seed)
    apply = u[0] < options["intensity_probability"]
    brightness = tf.where(apply, _between(u[1], -options["brightness"], options["brightness"]), 0.0)
    contrast = tf.where(apply, _between(u[2], *options["contrast"]), 1.0)
    gamma = tf.where(apply, _between(u[3], *options["gamma"]), 1.0)
    mean = tf.reduce_mean(image, axis=tuple(range(image.shape.rank - 1)), keepdims=True)
    return tf.clip_by_value((image + brightness - mean) * contrast + mean, 0.0, 1.0) ** gamma


class Augmentation:
    """A random transform applied jointly to an image (or volume), its mask and its weights.

    Defaults suit microscopy (the 2015 paper). Flips with probability 1/2 (``flip_depth``:
    axis 0 of a volume), quarter turns in-plane (2 if not square). With
    ``affine_probability``: an angle in ``[-rotation, rotation]`` degrees (0 to 180) in-plane
    (about axis 0 in 3D), a zoom factor in ``scale`` on every axis, a shift in ``[-shift,
    shift]`` of each axis's size (0 <= shift < 1). With ``elastic_probability``: ``N(0,
    elastic_sigma)`` px displacements on every axis (one sigma, or one per axis: e.g. ``(2,
    10, 10)`` for a volume of thick slices) at the points of an ``elastic_grid`` square
    (cubic in 3D) grid (the paper's 10 and 3). With ``intensity_probability``, the
    image only, clipped to [0, 1]: ``brightness`` added in ``[-brightness, brightness]``,
    ``contrast`` and ``gamma`` factor ranges; 0 or None: off. ``mirrored_labels``: pairs a flip
    left-right exchanges (``[(1, 2)]``: the lungs), a 1-channel mask's values, else channels.
    ``aug(image, mask, weights=None, *, seed)``: image float (H, W, C) or (D, H, W, C) in [0,
    1], mask (H, W[, K]) or (D, H, W[, K]) of any dtype, weights likewise, seed an integer
    tensor of shape [2]; returns ``(image, mask[, weights])`` in their shapes.

    Example:
        >>> image = tf.random.stateless_uniform((64, 64, 1), [0, 0])
        >>> warped, mask = Augmentation(rotation=10)(image, image > 0.5, seed=[4, 2])
        >>> warped.shape, mask.dtype.name
        (TensorShape([64, 64, 1]), 'bool')
        >>> volume = tf.random.stateless_uniform((8, 16, 16, 1), [0, 0])
        >>> [t.shape for t in Augmentation()(volume, volume[..., 0] > 0.5, seed=[4, 2])]
        [TensorShape([8, 16, 16, 1]), TensorShape([8, 16, 16])]
    """

    def __init__(self, *, flip_horizontal=True, flip_vertical=True, flip_depth=True,
                 rotate90=True, rotation=15.0, scale=(0.9, 1.1), shift=0.05,
                 affine_probability=1.0, elastic=True, elastic_sigma=10.0, elastic_grid=3,
                 elastic_probability=1.0, brightness=0.1, contrast=(0.9, 1.1), gamma=(0.8, 1.25),
                 intensity_probability=1.0, mirrored_labels=None, **unknown):
        if unknown:
            name = sorted(unknown)[0]
            close = difflib.get_close_matches(name, self.option_names(), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else "."
            raise ValueError(f"unknown Augmentation option {name!r}{hint} "
                             f"Options: {', '.join(self.option_names())}")
        arguments = locals()
        self.__dict__.update(_valid_options({n: arguments[n] for n in self.option_names()}))

    @classmethod
    def option_names(cls):
        """The names of the options, in signature order."""
        parameters = inspect.signature(cls.__init__).parameters.values()
        return tuple(p.name for p in parameters if p.kind is p.KEYWORD_ONLY)

    @classmethod
    def none(cls):
        """An augmentation that changes nothing (every option off)."""
        return cls(flip_horizontal=False, flip_vertical=False, flip_depth=False, rotate90=False,
                   elastic=False, rotation=0.0, scale=None, shift=0.0, brightness=0.0,
                   contrast=None, gamma=None)

    def get_config(self):
        """The options as a dict; ``Augmentation(**config)`` rebuilds it."""
        return {name: getattr(self, name) for name in self.option_names()}

    @classmethod
    def from_config(cls, config):
        """The augmentation of :meth:`get_config`'s dict."""
        return cls(**config)

    def __repr__(self):
        options = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"Augmentation({options})"

    def __call__(self, image, mask, weights=None, *, seed):
        options = _valid_options(self.get_config())  # attributes may have been edited
        seed = tf.convert_to_tensor(seed)
        if not seed.dtype.is_integer or seed.shape.rank != 1 or seed.shape[0] not in (2, None):
            raise ValueError(
                "seed must be an integer tensor of shape [2] (e.g. from tf.random.experimental."
                f"stateless_split); got {seed.dtype.name} of shape {seed.shape}")
        seed = tf.cast(seed, tf.int64)
        image, _ = _with_channel(image, "image")
        if not image.dtype.is_floating:
            raise ValueError(f"image must be float in [0, 1]; got dtype {image.dtype.name}")
        given = zip([mask] if weights is None else [mask, weights], ("mask", "weights"))
        shaped = [_with_channel(tensor, name, image) for tensor, name in given]
        tensors = [image] + [tensor for tensor, _ in shaped]
        flips, affine, elastic, intensity = _active(options)
        if flips:
            tensors = _flip_rotate(tensors, seed, options)
        image, mask, *rest = tensors
        if elastic or affine:
            image, mask, rest = _warp(image, mask, rest, seed, options)
        if intensity:
            adjusted = _adjust_intensity(tf.cast(image, tf.float32),
                                         _fold_in(seed, _INTENSITY_SEED), options)
            image = tf.cast(adjusted, image.dtype)
        others = zip([mask, *rest], (added for _, added in shaped))
        return (image, *(tensor[..., 0] if added else tensor for tensor, added in others))


def elastic_deform(image, mask, weights=None, *, sigma=10.0, grid=3, seed):
    """The paper's elastic deformation alone (``Augmentation.none()`` with ``elastic=True``,
    ``elastic_sigma=sigma``, ``elastic_grid=grid``), of an image or a volume, its mask and its
    weights.

    Example:
        >>> image = tf.cast(tf.range(32)[:, None, None] % 8 == 0, tf.float32) * tf.ones((32, 32, 1))
        >>> bent, bent_mask = elastic_deform(image, image > 0, sigma=4.0, seed=[0, 1])
        >>> bool(tf.reduce_any(bent != image)), bent_mask.dtype.name
        (True, 'bool')
    """
    options = Augmentation.none().get_config()
    options.update(elastic=True, elastic_sigma=sigma, elastic_grid=grid)
    return Augmentation(**options)(image, mask, weights, seed=seed)
