"""Aligned augmentation: one random transform for an image, its mask and its pixel weights.

Flips and quarter turns permute the pixels exactly. Rotation, scaling, shift and the 2015
paper's elastic deformation (``N(0, sigma)`` displacements on a coarse grid, bicubically
interpolated to every pixel) compose into ONE sampling field applied once by :func:`remap`:
bilinear for the image and the weights, nearest neighbour for the mask (its values stay
values of the input), the image mirrored past its borders. Brightness, contrast and gamma
change the image only. (Keras's ``RandomElasticTransform`` deforms a mask with another
random field than its image: do not use it for segmentation.)

Randomness is stateless: ``seed`` is an integer tensor of shape [2]; the same seed gives the
same result, also in a parallel ``tf.data`` map. TensorFlow ops only, shapes may be dynamic.
"""

import difflib
import inspect
import math

import tensorflow as tf

from keras_unet.checks import check_bool, check_choice, check_int, check_number, fail

#: Sub-seed of each random component: switching one option off changes no other draw.
_FLIP_SEED, _AFFINE_SEED, _ELASTIC_SEED, _INTENSITY_SEED = 1, 2, 3, 4
METHODS = ("bilinear", "nearest")
#: The spatial axes of an ``(H, W, C)`` tensor, which flips and turns permute.
SPATIAL_AXES = (0, 1)
_SWITCHES = ("flip_horizontal", "flip_vertical", "rotate90", "elastic")
_PROBABILITIES = ("affine_probability", "elastic_probability", "intensity_probability")


# ---------------------------------------------------------------------- arguments


def _factors(value, argument):
    """``None`` (off: (1, 1)) or a pair ``(low, high)`` with ``0 < low <= high``."""
    if value is None:
        return (1.0, 1.0)
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
        fail(argument, "None or a pair (low, high) of factors > 0", value)
    low, high = (check_number(v, f"{argument}[{i}]", 0, open_low=True)
                 for i, v in enumerate(value))
    if low > high:
        fail(argument, "a range (low, high) with low <= high", tuple(value))
    return (low, high)


def _valid_options(options):
    """A checked, normalised copy of an :class:`Augmentation`'s options."""
    valid = {name: check_bool(options[name], name) for name in _SWITCHES}
    valid.update({name: check_number(options[name], name, 0, 1) for name in _PROBABILITIES})
    valid["rotation"] = check_number(options["rotation"], "rotation", 0, 180)
    valid["shift"] = check_number(options["shift"], "shift", 0, 1, open_high=True)
    valid["elastic_sigma"] = check_number(options["elastic_sigma"], "elastic_sigma", 0)
    valid["elastic_grid"] = check_int(options["elastic_grid"], "elastic_grid", 2)
    valid["brightness"] = check_number(options["brightness"], "brightness", 0, 1)
    for name in ("scale", "contrast", "gamma"):
        valid[name] = _factors(options[name], name)
    return valid


def _as_seed(seed):
    seed = tf.convert_to_tensor(seed)
    if not seed.dtype.is_integer or seed.shape.rank != 1 or seed.shape[0] not in (2, None):
        raise ValueError(
            "seed must be an integer tensor of shape [2] (e.g. from tf.random.experimental."
            f"stateless_split); got {seed.dtype.name} of shape {seed.shape}")
    return tf.cast(seed, tf.int64)


def _with_channel(tensor, argument, ranks):
    """``tensor`` as rank 3 (H, W, C), and whether a channel axis was added."""
    tensor = tf.convert_to_tensor(tensor)
    if tensor.shape.rank not in ranks:
        shapes = " or ".join(("(H, W)", "(H, W, C)")[r - 2] for r in ranks)
        raise ValueError(f"{argument} must have shape {shapes}; got shape {tensor.shape}")
    return (tensor[..., None], True) if tensor.shape.rank == 2 else (tensor, False)


def _same_size(image, other, argument):
    if not image.shape[:2].is_compatible_with(other.shape[:2]):
        raise ValueError(f"{argument} must have the image's height and width "
                         f"{image.shape[:2]}; got shape {other.shape}")


# ----------------------------------------------------------------------- sampling


def _mirrored(x, size):
    """Coordinates mirrored into ``[0, size - 1]`` about the edge pixels' centres
    (``d c b | a b c d | c b a``)."""
    last = tf.cast(size - 1, tf.float32)
    period = tf.maximum(2.0 * last, 1.0)
    x = tf.math.floormod(tf.abs(x), period)
    return tf.clip_by_value(tf.where(x > last, period - x, x), 0.0, last)


def _source_pixels(rows, cols, image):
    """Where to read in ``image``: the flat index of the top-left neighbour of each
    (mirrored) coordinate, and the fractions of the way to the next row and column."""
    shape = tf.shape(image)
    rows, cols = _mirrored(rows, shape[0]), _mirrored(cols, shape[1])
    row, col = tf.floor(rows), tf.floor(cols)
    index = tf.cast(row, tf.int32) * shape[1] + tf.cast(col, tf.int32)
    return index, rows - row, cols - col


def _sample(image, source, method):
    """``image`` (H, W, C) read at :func:`_source_pixels`: bilinear (a neighbour is read only
    with a fraction > 0; equal neighbours give their value exactly) or nearest (ties go to
    the next row or column)."""
    index, down, right = source
    flat = tf.reshape(image, (-1, tf.shape(image)[2]))
    width = tf.shape(image)[1]
    if method == "nearest":
        step = tf.cast(down >= 0.5, tf.int32) * width + tf.cast(right >= 0.5, tf.int32)
        out = tf.gather(flat, index + step)
    else:
        across, below = tf.cast(right > 0, tf.int32), tf.cast(down > 0, tf.int32) * width
        a, b, c, d = (tf.gather(flat, index + s) for s in (0, across, below, below + across))
        down, right = down[..., None], right[..., None]
        top, bottom = a + right * (b - a), c + right * (d - c)
        out = top + down * (bottom - top)
    out.set_shape(index.shape[:2].concatenate(image.shape[2:]))
    return out


def remap(image, coords, method="bilinear"):
    """Sample ``image`` at arbitrary coordinates: ``out[i, j] = image[coords[i, j]]``.

    Args:
        image: ``(H, W, C)`` tensor; float for ``"bilinear"``, any dtype for ``"nearest"``.
        coords: ``(H2, W2, 2)`` float32 ``(row, column)`` in pixels, centres at integers;
            outside the image it is mirrored about its edge pixels (``d c b | a b c d``).
        method: ``"bilinear"`` (images, weights) or ``"nearest"`` (masks).

    Returns:
        ``(H2, W2, C)`` tensor of ``image``'s dtype.

    Example:
        >>> image = tf.reshape(tf.range(4.0), (1, 4, 1))  # one row: 0 1 2 3
        >>> coords = tf.constant([[[0.0, 0.5], [0.0, -1.0], [0.0, 4.0]]])
        >>> remap(image, coords)[..., 0].numpy().tolist()  # between, mirrored left/right
        [[0.5, 1.0, 2.0]]
    """
    check_choice(method, METHODS, "method")
    image, _ = _with_channel(image, "image", (3,))
    coords = tf.convert_to_tensor(coords, tf.float32)
    if coords.shape.rank != 3 or coords.shape[-1] not in (2, None):
        raise ValueError(f"coords must have shape (H, W, 2); got shape {coords.shape}")
    if method == "bilinear" and not image.dtype.is_floating:
        raise ValueError(
            f"bilinear remap needs a float image; got {image.dtype.name} (use 'nearest')")
    return _sample(image, _source_pixels(coords[..., 0], coords[..., 1], image), method)


def _between(u, low, high):
    return low + u * (high - low)


def _elastic_displacement(seed, size, options):
    """The paper's displacement field (H, W, 2) in pixels: ``N(0, elastic_sigma)`` vectors on
    a coarse grid whose points sit at the centres of a tiling of the image, bicubically
    interpolated; applied with probability ``elastic_probability``."""
    normal_seed, apply_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    grid = options["elastic_grid"]
    coarse = tf.random.stateless_normal((grid, grid, 2), normal_seed,
                                        stddev=options["elastic_sigma"])
    apply = tf.random.stateless_uniform((), apply_seed) < options["elastic_probability"]
    return tf.image.resize(coarse * tf.cast(apply, tf.float32), size, method="bicubic")


def _sampling_field(seed, height, width, options):
    """Where each output pixel reads in the input (rows and columns, (H, W) each): the
    elastic displacement, then the inverse of a rotation/scaling/shift about the centre."""
    rows, cols = tf.meshgrid(tf.range(height, dtype=tf.float32),
                             tf.range(width, dtype=tf.float32), indexing="ij")
    if options["elastic"]:
        elastic_seed = tf.random.experimental.stateless_fold_in(seed, _ELASTIC_SEED)
        moved = _elastic_displacement(elastic_seed, tf.stack([height, width]), options)
        rows, cols = rows + moved[..., 0], cols + moved[..., 1]
    if _affine_enabled(options):
        u = tf.random.stateless_uniform(
            (5,), tf.random.experimental.stateless_fold_in(seed, _AFFINE_SEED))
        apply, limit = u[0] < options["affine_probability"], options["rotation"] * math.pi / 180
        angle = tf.where(apply, _between(u[1], -limit, limit), 0.0)
        scale = tf.where(apply, _between(u[2], *options["scale"]), 1.0)
        shift = tf.where(apply, _between(u[3:], -options["shift"], options["shift"]), 0.0)
        size = tf.cast(tf.stack([height, width]), tf.float32)
        centre = (size - 1) / 2
        y, x = rows - centre[0] - shift[0] * size[0], cols - centre[1] - shift[1] * size[1]
        cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
        rows, cols = centre[0] + cos * y + sin * x, centre[1] - sin * y + cos * x
    return rows, cols


def _warp(image, mask, weights, seed, options):
    """The one sampling field, bilinear for the image and the ``weights`` (a list of 0 or 1
    tensors), nearest neighbour for the mask."""
    source = _source_pixels(
        *_sampling_field(seed, tf.shape(image)[0], tf.shape(image)[1], options), image)
    floats = [tf.cast(_sample(tf.cast(t, tf.float32), source, "bilinear"), t.dtype)
              for t in (image, *weights)]
    return floats[0], _sample(mask, source, "nearest"), floats[1:]


def _affine_enabled(options):
    moves = options["rotation"] > 0 or options["scale"] != (1.0, 1.0) or options["shift"] > 0
    return moves and options["affine_probability"] > 0


def _quarter_turns(tensor, turns):
    """``tensor`` turned by ``turns`` quarter turns in the plane of :data:`SPATIAL_AXES`."""
    turned = tf.image.rot90(tensor, turns)
    turned.set_shape(tensor.shape)
    return turned


def _flip_rotate(tensors, seed, options):
    """Random flips and quarter turns of all ``tensors`` (H, W, C) together; odd quarter
    turns only for square images, so that shapes never change."""
    u = tf.random.stateless_uniform((3,), seed)
    rows, cols = SPATIAL_AXES

    def maybe(condition, transform, tensors):
        return tf.cond(condition, lambda: [transform(t) for t in tensors], lambda: tensors)

    if options["flip_horizontal"]:
        tensors = maybe(u[0] < 0.5, lambda t: tf.reverse(t, [cols]), tensors)
    if options["flip_vertical"]:
        tensors = maybe(u[1] < 0.5, lambda t: tf.reverse(t, [rows]), tensors)
    if options["rotate90"]:
        turns = tf.minimum(tf.cast(u[2] * 4, tf.int32), 3)
        shape = tf.shape(tensors[0])
        turns = tf.where(tf.equal(shape[rows], shape[cols]), turns, 2 * (turns // 2))
        tensors = [_quarter_turns(t, turns) for t in tensors]
    return list(tensors)


def _adjust_intensity(image, seed, options):
    """Brightness (added), contrast (about the channel means), gamma; then [0, 1]."""
    u = tf.random.stateless_uniform((4,), seed)
    apply = u[0] < options["intensity_probability"]
    brightness = tf.where(apply, _between(u[1], -options["brightness"], options["brightness"]), 0.0)
    contrast = tf.where(apply, _between(u[2], *options["contrast"]), 1.0)
    gamma = tf.where(apply, _between(u[3], *options["gamma"]), 1.0)
    mean = tf.reduce_mean(image, axis=SPATIAL_AXES, keepdims=True)
    return tf.clip_by_value((image + brightness - mean) * contrast + mean, 0.0, 1.0) ** gamma


def _intensity_enabled(options):
    changes = options["brightness"] > 0 or options["contrast"] != (1.0, 1.0) or (
        options["gamma"] != (1.0, 1.0))
    return changes and options["intensity_probability"] > 0


# ------------------------------------------------------------------------- public


class Augmentation:
    """A random transform applied jointly to an image, its mask and its weights.

    The defaults suit microscopy (the 2015 paper's setting). Geometry:
    ``flip_horizontal``, ``flip_vertical`` (each with probability 1/2), ``rotate90`` (0, 90,
    180 or 270 degrees; 0 or 180 for non-square images); ``rotation`` (uniform in
    ``[-rotation, rotation]`` degrees, 0 to 180), ``scale`` (a factor uniform in ``(low,
    high)``, > 1 enlarges; None = off), ``shift`` (a fraction of the height and of the width
    in ``[-shift, shift]``, 0 <= shift < 1), all three with ``affine_probability``;
    ``elastic`` (the paper's deformation: ``N(0, elastic_sigma)`` pixel displacements, 10 in
    the paper, on an ``elastic_grid`` x ``elastic_grid`` grid, 3 in the paper) with
    ``elastic_probability``. Intensity, the image only, clipped to [0, 1]: ``brightness``
    (added, uniform in ``[-brightness, brightness]``), ``contrast`` and ``gamma`` (factor
    ranges, None = off), with ``intensity_probability``. A value of 0 (or None) switches an
    option off.

    Call ``aug(image, mask, weights=None, *, seed)``: ``image`` float ``(H, W, C)`` in
    [0, 1]; ``mask`` ``(H, W)`` or ``(H, W, K)`` of any dtype (binary, class indices or one
    channel per label); ``weights`` float ``(H, W)`` or ``(H, W, 1)``; ``seed`` an integer
    tensor of shape [2]. Returns ``(image, mask[, weights])`` with the inputs' shapes and
    dtypes. An unknown option or a bad value is a ValueError naming it.

    Example:
        >>> import numpy as np
        >>> image = np.random.default_rng(0).random((64, 64, 1), dtype=np.float32)
        >>> warped, mask = Augmentation(rotation=10)(image, image > 0.5, seed=[4, 2])
        >>> warped.shape, mask.dtype.name
        (TensorShape([64, 64, 1]), 'bool')
    """

    def __init__(self, *, flip_horizontal=True, flip_vertical=True, rotate90=True,
                 rotation=15.0, scale=(0.9, 1.1), shift=0.05, affine_probability=1.0,
                 elastic=True, elastic_sigma=10.0, elastic_grid=3, elastic_probability=1.0,
                 brightness=0.1, contrast=(0.9, 1.1), gamma=(0.8, 1.25),
                 intensity_probability=1.0, **unknown):
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
        return cls(flip_horizontal=False, flip_vertical=False, rotate90=False, rotation=0.0,
                   scale=None, shift=0.0, elastic=False, brightness=0.0, contrast=None,
                   gamma=None)

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
        seed = _as_seed(seed)
        image, _ = _with_channel(image, "image", (3,))
        if not image.dtype.is_floating:
            raise ValueError(f"image must be float in [0, 1]; got dtype {image.dtype.name}")
        mask, mask_channel = _with_channel(mask, "mask", (2, 3))
        _same_size(image, mask, "mask")
        tensors = [image, mask]
        if weights is not None:
            weights, weights_channel = _with_channel(weights, "weights", (2, 3))
            _same_size(image, weights, "weights")
            tensors.append(weights)
        if options["flip_horizontal"] or options["flip_vertical"] or options["rotate90"]:
            flip_seed = tf.random.experimental.stateless_fold_in(seed, _FLIP_SEED)
            tensors = _flip_rotate(tensors, flip_seed, options)
        image, mask, *rest = tensors
        if options["elastic"] or _affine_enabled(options):
            image, mask, rest = _warp(image, mask, rest, seed, options)
        if _intensity_enabled(options):
            intensity_seed = tf.random.experimental.stateless_fold_in(seed, _INTENSITY_SEED)
            adjusted = _adjust_intensity(tf.cast(image, tf.float32), intensity_seed, options)
            image = tf.cast(adjusted, image.dtype)
        mask = mask[..., 0] if mask_channel else mask
        if weights is None:
            return image, mask
        return image, mask, (rest[0][..., 0] if weights_channel else rest[0])


def elastic_deform(image, mask, weights=None, *, sigma=10.0, grid=3, seed):
    """The paper's elastic deformation alone (``Augmentation.none()`` with ``elastic=True``,
    ``elastic_sigma=sigma``, ``elastic_grid=grid``), of an image, its mask and its weights.

    Example:
        >>> import numpy as np
        >>> image = np.zeros((32, 32, 1), np.float32)
        >>> image[::8] = 1.0  # horizontal lines, 8 pixels apart
        >>> bent, bent_mask = elastic_deform(image, image > 0, sigma=4.0, seed=[0, 1])
        >>> bool(np.any(bent != image)), bent_mask.dtype.name
        (True, 'bool')
    """
    options = Augmentation.none().get_config()
    options.update(elastic=True, elastic_sigma=sigma, elastic_grid=grid)
    return Augmentation(**options)(image, mask, weights, seed=seed)
