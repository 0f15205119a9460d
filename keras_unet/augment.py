"""Aligned augmentation: one random transform for an image, its mask and its pixel weights.

Flips and turns permute pixels; rotation, scale, shift and the paper's elastic deformation
make ONE sampling field applied once (bilinear for image and weights, nearest for the mask,
mirrored borders); intensity changes the image only. (Keras's ``RandomElasticTransform``
warps a mask with another field than its image.) Stateless: one ``seed``, one result.
"""

import difflib
import inspect
import math

import tensorflow as tf

from keras_unet.checks import check_bool, check_choice, check_int, check_number, fail

#: Sub-seed of each random component: switching one option off changes no other draw.
_FLIP_SEED, _AFFINE_SEED, _ELASTIC_SEED, _INTENSITY_SEED = 1, 2, 3, 4
_fold_in = tf.random.experimental.stateless_fold_in
#: The spatial axes of an ``(H, W, C)`` tensor, which flips and turns permute.
SPATIAL_AXES = (0, 1)
_SWITCHES = ("flip_horizontal", "flip_vertical", "rotate90", "elastic")
#: The numeric options >= 0, and their upper bound.
_NUMBERS = dict(rotation=180, elastic_sigma=None, brightness=1, affine_probability=1,
                elastic_probability=1, intensity_probability=1)


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


def _valid_options(options):
    """A checked, normalised copy of an :class:`Augmentation`'s options."""
    valid = {name: check_bool(options[name], name) for name in _SWITCHES}
    valid.update({name: check_number(options[name], name, 0, high)
                  for name, high in _NUMBERS.items()})
    valid["shift"] = check_number(options["shift"], "shift", 0, 1, open_high=True)
    valid["elastic_grid"] = check_int(options["elastic_grid"], "elastic_grid", 2)
    valid.update({name: _factors(options[name], name) for name in ("scale", "contrast", "gamma")})
    return valid


def _with_channel(tensor, argument, image=None):
    """``tensor`` as (H, W, C), and whether a channel axis was added (not to an image)."""
    tensor = tf.convert_to_tensor(tensor)
    if tensor.shape.rank not in ((3,) if image is None else (2, 3)):
        shapes = "(H, W, C)" if image is None else "(H, W) or (H, W, C)"
        raise ValueError(f"{argument} must have shape {shapes}; got shape {tensor.shape}")
    added = tensor.shape.rank == 2
    tensor = tensor[..., None] if added else tensor
    if image is not None and not image.shape[:2].is_compatible_with(tensor.shape[:2]):
        raise ValueError(f"{argument} must have the image's height and width "
                         f"{image.shape[:2]}; got shape {tensor.shape}")
    return tensor, added


def _source_pixels(rows, cols, image):
    """Mirrored (``d c b | a b c d | c b a``) coordinates: top-left flat index, fractions."""
    shape, located = tf.shape(image), []
    for x, size in ((rows, shape[0]), (cols, shape[1])):
        last = tf.cast(size - 1, tf.float32)
        period = tf.maximum(2.0 * last, 1.0)
        x = tf.math.floormod(tf.abs(x), period)
        x = tf.clip_by_value(tf.where(x > last, period - x, x), 0.0, last)
        located.append((tf.floor(x), x - tf.floor(x)))
    (row, down), (col, right) = located
    return tf.cast(row, tf.int32) * shape[1] + tf.cast(col, tf.int32), down, right


def _sample(image, source, method):
    """``image`` read at ``source``, bilinear (exact for equal neighbours) or nearest."""
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
    """``out[i, j] = image[coords[i, j]]``: ``image`` ``(H, W, C)`` (float for
    ``"bilinear"``, any dtype for ``"nearest"``) read at ``coords`` ``(H2, W2, 2)``, (row,
    column) in pixels, mirrored about the edge pixels outside the image.

    Example:
        >>> image = tf.reshape(tf.range(4.0), (1, 4, 1))  # one row: 0 1 2 3
        >>> coords = tf.constant([[[0.0, 0.5], [0.0, -1.0], [0.0, 4.0]]])
        >>> remap(image, coords)[..., 0].numpy().tolist()  # between, mirrored left/right
        [[0.5, 1.0, 2.0]]
    """
    check_choice(method, ("bilinear", "nearest"), "method")
    image, _ = _with_channel(image, "image")
    coords = tf.convert_to_tensor(coords, tf.float32)
    if coords.shape.rank != 3 or coords.shape[-1] not in (2, None):
        raise ValueError(f"coords must have shape (H, W, 2); got shape {coords.shape}")
    if method == "bilinear" and not image.dtype.is_floating:
        raise ValueError(
            f"bilinear remap needs a float image; got {image.dtype.name} (use 'nearest')")
    return _sample(image, _source_pixels(coords[..., 0], coords[..., 1], image), method)


def _between(u, low, high):  # u uniform in [0, 1)
    return low + u * (high - low)


def _sampling_field(seed, image, options):
    """Where each output pixel reads (rows, columns): the paper's elastic displacement (coarse
    grid vectors, bicubically interpolated), then the inverse rotation/scale/shift."""
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    rows, cols = tf.meshgrid(tf.range(height, dtype=tf.float32),
                             tf.range(width, dtype=tf.float32), indexing="ij")
    if options["elastic"]:
        normal_seed, apply_seed = tf.unstack(tf.random.experimental.stateless_split(
            _fold_in(seed, _ELASTIC_SEED), 2))
        grid, sigma = options["elastic_grid"], options["elastic_sigma"]
        coarse = tf.random.stateless_normal((grid, grid, 2), normal_seed, stddev=sigma)
        coarse *= tf.cast(tf.random.stateless_uniform((), apply_seed)
                          < options["elastic_probability"], tf.float32)
        moved = tf.image.resize(coarse, tf.stack([height, width]), method="bicubic")
        rows, cols = rows + moved[..., 0], cols + moved[..., 1]
    if _active(options)[1]:
        u = tf.random.stateless_uniform((5,), _fold_in(seed, _AFFINE_SEED))
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
    """One sampling field: bilinear for the image and ``weights`` (a list), nearest for the mask."""
    source = _source_pixels(*_sampling_field(seed, image, options), image)
    floats = [tf.cast(_sample(tf.cast(t, tf.float32), source, "bilinear"), t.dtype)
              for t in (image, *weights)]
    return floats[0], _sample(mask, source, "nearest"), floats[1:]


def _active(options):
    """Which stages change anything: flips and turns, affine, elastic, intensity."""
    o, off = options, (1.0, 1.0)
    affine = o["rotation"] > 0 or o["scale"] != off or o["shift"] > 0
    intensity = o["brightness"] > 0 or o["contrast"] != off or o["gamma"] != off
    return (o["flip_horizontal"] or o["flip_vertical"] or o["rotate90"],
            affine and o["affine_probability"] > 0, o["elastic"],
            intensity and o["intensity_probability"] > 0)


def _flip_rotate(tensors, seed, options):
    """Random flips and quarter turns (odd ones only if square) of all ``tensors`` together."""
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
        tensors = [tf.ensure_shape(tf.image.rot90(t, turns), t.shape) for t in tensors]
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


class Augmentation:
    """A random transform applied jointly to an image, its mask and its weights.

    Defaults suit microscopy (the 2015 paper). Flips with probability 1/2, quarter turns (2
    if not square). With ``affine_probability``: an angle in ``[-rotation, rotation]``
    degrees (0 to 180), a zoom factor in ``scale``, a shift in ``[-shift, shift]`` of the
    height and width (0 <= shift < 1). With ``elastic_probability``: ``N(0, elastic_sigma)``
    px displacements on an ``elastic_grid`` square grid (the paper's 10 and 3). With
    ``intensity_probability``, the image only, clipped to [0, 1]: ``brightness`` added in
    ``[-brightness, brightness]``, ``contrast`` and ``gamma`` factor ranges; 0 or None: off.
    ``aug(image, mask, weights=None, *, seed)``: image float (H, W, C) in [0, 1], mask (H, W[,
    K]) of any dtype, weights (H, W[, 1]), seed an integer tensor of shape [2]; returns
    ``(image, mask[, weights])`` in their shapes.

    Example:
        >>> image = tf.random.stateless_uniform((64, 64, 1), [0, 0])
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
        return cls(flip_horizontal=False, flip_vertical=False, rotate90=False, elastic=False,
                   rotation=0.0, scale=None, shift=0.0, brightness=0.0, contrast=None, gamma=None)

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
            tensors = _flip_rotate(tensors, _fold_in(seed, _FLIP_SEED), options)
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
    ``elastic_sigma=sigma``, ``elastic_grid=grid``), of an image, its mask and its weights.

    Example:
        >>> image = tf.cast(tf.range(32)[:, None, None] % 8 == 0, tf.float32) * tf.ones((32, 32, 1))
        >>> bent, bent_mask = elastic_deform(image, image > 0, sigma=4.0, seed=[0, 1])
        >>> bool(tf.reduce_any(bent != image)), bent_mask.dtype.name
        (True, 'bool')
    """
    options = Augmentation.none().get_config()
    options.update(elastic=True, elastic_sigma=sigma, elastic_grid=grid)
    return Augmentation(**options)(image, mask, weights, seed=seed)
