"""The U-Net of Ronneberger, Fischer and Brox (2015) and its 3D form (Çiçek et al. 2016) in
``keras`` and ``keras.ops`` only (every backend), from one code path: its blocks, its size
helpers and its recorded options. Layer names follow the paper's figure: ``enc1_conv1`` ...
``bottleneck_conv2``, ``dec4_upconv`` ... ``head``."""

import ast
import contextlib
import itertools
import math
import numbers
import types

import keras
import numpy as np
from keras import layers

from keras_unet.checks import check_bool, check_choice, check_int, check_number, fail

PADDINGS = ("same", "valid")
UPSAMPLINGS = ("transpose", "bilinear")
DOUBLINGS = ("per_level", "before_pool")
#: Batch-normalisation momentum: with Keras's 0.99 a 32-filter U-Net collapsed to one
#: class on ISBI 2012 after ~240 steps (the statistics lag the weights); 0.9 trains well.
BATCH_NORM_MOMENTUM = 0.9
#: The layers of the network per spatial rank (2: images, 3: volumes): one code path.
SPATIAL = {r: types.SimpleNamespace(
    rank=r, conv=getattr(layers, f"Conv{r}D"), upconv=getattr(layers, f"Conv{r}DTranspose"),
    pool=getattr(layers, f"MaxPooling{r}D"), upsample=getattr(layers, f"UpSampling{r}D"),
    crop=getattr(layers, f"Cropping{r}D")) for r in (2, 3)}
#: The names of the spatial axes in messages, per rank.
AXES = {2: ("height", "width"), 3: ("depth (axis 0)", "height", "width")}
#: The 3D U-Net of Çiçek et al. (2016): ``build_unet((116, 132, 132, 3), 3, **CICEK_2016,
#: padding="valid")`` (see build_unet for its parameter count).
CICEK_2016 = dict(depth=3, filters=32, batch_norm=True, dropout=0.0, doubling="before_pool")
#: The name of the layer that records build_unet's options starts with this.
CONFIG_PREFIX = "unet_config"


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _pools(pool_size, depth, rank=None):
    """``pool_size`` as ``depth`` tuples of ``rank`` ints (None: as its tuples have)."""
    levels = pool_size if isinstance(pool_size, list) else [pool_size] * depth
    rank = rank or next((len(p) for p in levels if isinstance(p, tuple)), 1)
    pools = [(p,) * rank if _is_int(p) else p for p in levels]
    if len(pools) != depth or not all(isinstance(p, tuple) and len(p) == rank and all(
            _is_int(n) and n >= 1 for n in p) for p in pools):
        fail("pool_size", f"an int >= 1, a tuple of {rank} (one per axis) or a list of {depth} "
             f"(depth) of them", pool_size)
    return [tuple(int(n) for n in p) for p in pools]


def _trace(size, pools, padding):
    """(output side, {level: skip crop}) for one input side along an axis with these pool
    sizes per level; None if it does not fit (a pooling that does not divide, a side < 1)."""
    if padding == "same":
        return (size, {}) if size % math.prod(pools) == 0 else None
    skips, crops = [], {}
    for pool in pools:  # each level's two 3x3 convolutions trim 4 px, then the pooling
        size -= 4
        if size < 1 or size % pool:
            return None
        skips.append(size)
        size //= pool
    size -= 4  # the bottleneck
    for level in range(len(pools), 0, -1):  # up-convolution, crop the skip to it, 2 convolutions
        if size < 1:
            return None
        size *= pools[level - 1]
        crops[level] = (skips[level - 1] - size) // 2
        size -= 4
    return (size, crops) if size >= 1 else None


def _near(near, pools, padding):
    if _trace(near, pools, padding):
        return [near]
    below = next(([s] for s in range(near - 1, 0, -1) if _trace(s, pools, padding)), [])
    return below + [next(s for s in itertools.count(near + 1) if _trace(s, pools, padding))]


def _misfit(size, pools, depth, padding, pool_size, label):
    """The message for a side that does not fit, with the nearest sides that do."""
    smallest, square = _near(1, pools, padding)[-1], set(pools) == {2}
    if size < smallest:
        rule = (f"at least {smallest}, the smallest input it takes (its output is then "
                f"{_trace(smallest, pools, padding)[0]} px)")
    elif padding == "same":
        rule = (f"a multiple of {math.prod(pools)} ("
                + ("2**depth)" if square else f"the product of its pool sizes {pools})"))
    else:
        rule = ("even before each 2x2 max-pooling" if square else
                f"divisible by each level's pool size {pools}") + ", after the 3x3 valid convolutions"
    pooled = "" if pool_size == 2 else f" and pool_size={pool_size!r}"
    return (f"{label} {size} does not fit a depth-{depth} U-Net with padding={padding!r}{pooled}"
            f": it must be {rule}. Nearest sizes that fit: "
            + ", ".join(map(str, _near(size, pools, padding))))


def _axes(sizes, depth, padding, pool_size):
    """(sides, per-axis pools, labels) of a size helper's arguments, checked."""
    check_int(depth, "depth")
    check_choice(padding, PADDINGS, "padding")
    many = isinstance(sizes, tuple)
    per_axis = list(zip(*_pools(pool_size, depth, len(sizes) if many else None)))
    if not many and len(set(per_axis)) > 1:
        raise ValueError(f"pool_size {pool_size!r} differs between axes: give the input size "
                         f"per axis (a tuple of {len(per_axis)} sizes)")
    labels = (AXES.get(len(sizes)) or [f"axis {i}" for i in range(len(sizes))]) if many else None
    return (sizes, per_axis, labels) if many else ((sizes,), per_axis[:1], ["size"])


def output_size(input_size, depth=4, padding="valid", *, pool_size=2):
    """The output side for an input side (an int), or sides per axis for a tuple of them; a
    ValueError names the axis and the nearest sizes that fit.

    Example:
        >>> output_size(572, depth=4, padding="valid"), output_size(256, 4, "same")
        (388, 256)
        >>> output_size((30, 92, 92), 2, "valid", pool_size=[(1, 2, 2), (2, 2, 2)])
        (6, 52, 52)
    """
    sides, per_axis, labels = _axes(input_size, depth, padding, pool_size)
    out = []
    for side, pools, label in zip(sides, per_axis, labels):
        traced = _trace(check_int(side, "input_size"), pools, padding)
        if traced is None:
            raise ValueError(_misfit(side, pools, depth, padding, pool_size, f"input {label}"))
        out.append(traced[0])
    return tuple(out) if isinstance(input_size, tuple) else out[0]


def valid_input_sizes(near, depth=4, padding="valid", *, pool_size=2):
    """``[near]`` if it fits, else the largest fitting size below it (if any) and above; for a
    tuple of sides, a tuple of such lists.

    Example:
        >>> valid_input_sizes(570, depth=4, padding="valid")
        [556, 572]
        >>> valid_input_sizes((30, 64, 64), 2, "same", pool_size=(1, 2, 2))
        ([30], [64], [64])
    """
    sides, per_axis, _ = _axes(near, depth, padding, pool_size)
    out = tuple(_near(check_int(s, "near"), pools, padding) for s, pools in zip(sides, per_axis))
    return out if isinstance(near, tuple) else out[0]


def _per_axis(depth, pool_size, rule):
    values = tuple(rule(pools) for pools in zip(*_pools(pool_size, check_int(depth, "depth"))))
    return values[0] if len(set(values)) == 1 else values


def smallest_input_size(depth=4, padding="valid", *, pool_size=2):
    """The smallest input side a U-Net takes: 188 at depth 4 with valid padding, 16 with same;
    a tuple per axis where the pool sizes differ between axes.

    Example:
        >>> smallest_input_size(2, "valid", pool_size=[(1, 2, 2), (2, 2, 2)])
        (26, 44, 44)
    """
    check_choice(padding, PADDINGS, "padding")
    return _per_axis(depth, pool_size, lambda pools: _near(1, pools, padding)[-1])


def receptive_border(depth=4, *, pool_size=2):
    """Pixels a valid-padding U-Net consumes a side (``input = output + 2 * border``), the
    ``output_crop`` of :func:`keras_unet.data.make_dataset` for a valid model; a tuple per
    axis where the pool sizes differ between axes.

    Example:
        >>> [receptive_border(d) for d in (1, 2, 3, 4)]   # 4: the paper's 572 -> 388
        [8, 20, 44, 92]
        >>> receptive_border(2, pool_size=[(1, 2, 2), (2, 2, 2)])
        (12, 20, 20)
    """
    def border(pools):
        side = _near(1, pools, "valid")[-1]
        return (side - _trace(side, pools, "valid")[0]) // 2
    return _per_axis(depth, pool_size, border)


def _skip_crops(depth, pools=None):
    """Pixels cropped a side from encoder level k to match decoder level k (valid padding):
    size-independent, an int per level (a tuple per axis where they differ)."""
    per_axis = [_trace(_near(1, p, "valid")[-1], p, "valid")[1]
                for p in zip(*(pools or [(2,)] * depth))]
    return {level: (c[0] if len(set(c)) == 1 else c) for level in range(1, depth + 1)
            for c in [tuple(axis[level] for axis in per_axis)]}


#: Layers that act on each pixel alone, or join tensors pixel by pixel.
_PIXELWISE = (layers.Activation, layers.BatchNormalization, layers.Dropout,
              layers.Identity, layers.Concatenate, layers.Add, layers.Multiply, layers.Dense)


def _kinds(*kinds):
    return tuple(getattr(s, kind) for s in SPATIAL.values() for kind in kinds)


def padding_reach(model):
    """How far (px) zero padding reaches into a model's output (0 for valid padding), from its
    layers' kernels, strides, paddings, crops and up-sampling; or a ValueError naming a layer.
    2D and 3D models; the farthest reach over the axes.

    Example:
        >>> padding_reach(build_unet((None, None, 1), 2, depth=2, filters=4))
        22
    """
    rank = len(model.inputs[0].shape) - 2
    reach = {id(t): np.zeros((rank, 2), int) for t in model.inputs}  # axis x (start, end)
    for layer in (x for x in model.layers if not isinstance(x, layers.InputLayer)):
        c = layer.get_config()
        r = np.max([reach[id(t)] for t in keras.tree.flatten(layer.input)], axis=0)
        if isinstance(layer, _kinds("crop")):
            r = np.maximum(r - np.array(c["cropping"]), 0)
        elif isinstance(layer, _kinds("upconv", "upsample", "conv", "pool")):
            size = np.array(c.get("kernel_size") or c.get("pool_size") or c["size"])[:, None]
            stride = np.array(c.get("strides") or c["size"])[:, None]
            if c.get("interpolation") == "bilinear":  # blends 1 more; clamps at the edges
                r = r * stride + size // 2
            elif isinstance(layer, _kinds("upconv", "upsample")):
                r = np.where(r > 0, r * stride + size - stride, 0)
            else:  # padded as TensorFlow pads
                span = np.reshape(c.get("dilation_rate", 1), (-1, 1)) * (size - 1) + 1
                total = np.maximum(span - stride, 0) * (c["padding"] == "same")
                r = -(-(r + np.hstack([total // 2, total - total // 2])) // stride)
        elif not isinstance(layer, _PIXELWISE):
            raise ValueError(f"cannot tell how far zero padding reaches through layer "
                             f"{layer.name!r} ({type(layer).__name__})")
        reach[id(layer.output)] = r
    return int(max(reach[id(t)].max() for t in model.outputs))


def conv_block(x, filters, *, name, padding="same", batch_norm=False, activation="relu"):
    """Two 3x3 (3x3x3 on volumes) convolutions ``{name}_conv1``, ``{name}_conv2`` of
    ``filters`` (an int, or a pair: the first's, the second's), each followed by (batch
    normalisation ``{name}_bn1``, ... and) the activation."""
    spatial = SPATIAL[len(x.shape) - 2]
    for i, n in enumerate((filters, filters) if _is_int(filters) else filters, 1):
        x = spatial.conv(n, 3, padding=padding, use_bias=not batch_norm,  # BN's beta
                         activation=None if batch_norm else activation,
                         kernel_initializer="he_normal",  # the paper's N(0, sqrt(2/N))
                         name=f"{name}_conv{i}")(x)
        if batch_norm:
            x = layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM, name=f"{name}_bn{i}")(x)
            x = layers.Activation(activation, name=f"{name}_act{i}")(x)
    return x


def up_block(x, skip, filters, *, name, crop=0, padding="same", batch_norm=False,
             upsampling="transpose", activation="relu", pool_size=2, up_filters=None):
    """Up-sample by ``pool_size`` to ``up_filters`` (None: ``filters``) channels
    (``{name}_upconv``, kernel = stride = ``pool_size``), concatenate ``skip`` (cropped ``crop``
    px a side: an int or one per axis), then a :func:`conv_block` of ``filters``."""
    spatial = SPATIAL[len(x.shape) - 2]
    conv = dict(activation=activation, kernel_initializer="he_normal", name=f"{name}_upconv")
    if upsampling == "transpose":
        x = spatial.upconv(up_filters or filters, pool_size, strides=pool_size, **conv)(x)
    else:
        x = spatial.upsample(pool_size, interpolation="bilinear", name=f"{name}_upsample")(x)
        x = spatial.conv(up_filters or filters, pool_size, padding="same", **conv)(x)
    if crop:
        skip = spatial.crop(crop, name=f"{name}_crop")(skip)
    x = layers.Concatenate(name=f"{name}_concat")([skip, x])
    return conv_block(x, filters, name=name, padding=padding,
                      batch_norm=batch_norm, activation=activation)


def _valid_shape(input_shape, depth, padding, pool_size):
    """The input shape and the pool sizes per level, checked against each other."""
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else ()
    if len(shape) not in (3, 4):
        hint = f"; add a channel axis, e.g. {shape + (1,)} for gray images"
        raise ValueError(f"input_shape must be (height, width, channels); got {input_shape!r}"
                         + (hint if len(shape) == 2 else "; a 3D U-Net takes (depth, height, "
                                                          "width, channels)"))
    *spatial, channels = shape
    check_int(channels, "input_shape's channel axis")
    pools = _pools(pool_size, depth, len(spatial))
    first = shape[0] in (1, 3) and channels > 4  # (3, 256, 256): channels first, as in PyTorch
    for axis, size, along in zip(AXES[len(spatial)], spatial, zip(*pools)):
        if size is not None and _trace(check_int(size, f"input {axis}"), along, padding) is None:
            if first:
                raise ValueError(f"input {AXES[len(spatial)][0]} {shape[0]} does not fit a "
                                 f"depth-{depth} U-Net (input_shape {input_shape!r} has {channels}"
                                 f" channels): did you mean {(*shape[1:], shape[0])}? the channel"
                                 f" axis goes last")
            raise ValueError(f"input {axis}: " + _misfit(size, along, depth, padding, pool_size,
                                                         "input size") if len(spatial) == 2 else
                             _misfit(size, along, depth, padding, pool_size, f"input {axis}"))
    return shape, pools


def _activation_name(activation, argument, rule="a Keras activation"):
    """The name an activation is recorded by: a Keras name (or a function's)."""
    try:
        keras.activations.get(activation)
    except ValueError:
        fail(argument, rule, activation)
    name = activation if isinstance(activation, str) else getattr(activation, "__name__", "")
    if not (name.isascii() and name.isidentifier()):
        fail(argument, "a Keras activation or a function with a plain name", activation)
    return name


def build_unet(input_shape, n_classes, *, depth=4, filters=64, padding="same",
               batch_norm=False, dropout=0.5, upsampling="transpose", activation="relu",
               output_activation="auto", multilabel=False, pool_size=2, doubling="per_level",
               name="unet"):
    """The U-Net of Ronneberger, Fischer and Brox (2015), or of Çiçek et al. (2016) for
    volumes: a Keras model from an input ``image`` to scores ``(batch, *out_sides,
    n_classes)``; a ValueError names a bad argument, or for an input size that does not fit,
    the axis and the nearest sizes that do.

    Args:
        input_shape: ``(height, width, channels)`` (2D) or ``(depth, height, width,
            channels)`` (3D: 3x3x3 convolutions, ...); sides may be ``None``.
        n_classes: output channels: ``1`` for a binary mask (sigmoid), ``>= 2`` for class
            indices (softmax; the paper's 2) or, with ``multilabel=True``, one sigmoid per label.
        depth, filters: max-poolings (the paper's 4); filters of the first level, doubled
            at each level down (the paper's 64).
        padding: ``"same"`` (output as large as the input) or ``"valid"`` (the paper:
            unpadded convolutions, 572 -> 388, cropped skip connections).
        batch_norm: batch normalisation after every 3x3 convolution.
        dropout: rate after the deepest encoder level and the bottleneck; ``0``/``None``.
        upsampling: ``"transpose"`` (the paper's up-convolution) or ``"bilinear"`` and a
            convolution (2D only: Keras's UpSampling3D is nearest-neighbour only, so 3D
            refuses it; Keras 3.15 on TensorFlow fails on a second input size).
        activation: of every convolution but the head (the paper's ReLU).
        output_activation: ``"auto"`` (sigmoid for one channel or multilabel, else
            softmax), a Keras activation, or ``None`` for logits; float32 always.
        pool_size: of every max-pooling (an int), per axis (a tuple), or per level (a list
            of ``depth`` tuples, e.g. ``[(1, 2, 2), (2, 2, 2)]`` for thick slices); each
            up-convolution's kernel and stride are its level's pool size.
        doubling: ``"per_level"`` (2015: both convolutions of level k have ``filters *
            2**(k-1)``) or ``"before_pool"`` (2016: the second doubles the first; an
            up-convolution keeps its channels; the way up has the skips' channels).
        name: the model's name.

    Example:
        >>> model = build_unet((572, 572, 1), n_classes=2, padding="valid")
        >>> model.output_shape, model.count_params()
        ((None, 388, 388, 2), 31030658)

    Çiçek et al.'s 3D U-Net (CICEK_2016) has 19,077,859 parameters, 19,073,187 trainable:
    the description's weights and biases are 19,070,851 (the same network without batch
    normalisation); batch normalisation drops the 14 3x3x3 convolutions' biases (2,336: its
    beta replaces them) and adds 4 x 2,336 (gamma, beta, moving mean and variance; 2 x 2,336
    trainable). The paper's 19,069,955 is 896 fewer: the up-convolutions' biases (512 + 256
    + 128), which it did not count.

        >>> cicek = build_unet((116, 132, 132, 3), 3, **CICEK_2016, padding="valid")
        >>> cicek.output_shape, cicek.count_params()
        ((None, 28, 44, 44, 3), 19077859)
    """
    for value, argument in ((n_classes, "n_classes"), (depth, "depth"), (filters, "filters")):
        check_int(value, argument)
    check_choice(padding, PADDINGS, "padding")
    check_choice(upsampling, UPSAMPLINGS, "upsampling")
    check_choice(doubling, DOUBLINGS, "doubling")
    check_bool(batch_norm, "batch_norm")
    check_bool(multilabel, "multilabel")
    dropout = 0.0 if dropout is None else check_number(dropout, "dropout", 0, 1, open_high=True)
    activation = _activation_name(activation, "activation")
    if output_activation == "auto":
        output_activation = "sigmoid" if n_classes == 1 or multilabel else "softmax"
    if output_activation is not None:
        output_activation = _activation_name(output_activation, "output_activation",
                                             "'auto', None (logits) or a Keras activation")
    if output_activation == "softmax" and (n_classes == 1 or multilabel):
        raise ValueError("output_activation='softmax' makes no independent channel (n_classes=1"
                         " or multilabel=True): use 'sigmoid' or 'auto'")
    shape, pools = _valid_shape(input_shape, depth, padding, pool_size)
    if upsampling == "bilinear" and len(shape) == 4:
        raise ValueError(f"upsampling='bilinear' is for 2D models (Keras's UpSampling3D is "
                         f"nearest-neighbour only): use upsampling='transpose' for input_shape "
                         f"{input_shape!r}")
    crops = _skip_crops(depth, pools) if padding == "valid" else {}
    options = dict(padding=padding, batch_norm=batch_norm, activation=activation)
    # the options as a layer name, which Keras saves and TensorFlow takes (letters, digits, _.-)
    config = dict(options, input_shape="x".join(map(str, shape)), n_classes=n_classes, depth=depth,
                  dropout=np.format_float_positional(dropout, trim="-"), multilabel=multilabel,
                  filters=filters, output_activation=output_activation, upsampling=upsampling)
    if pool_size != 2:  # recorded where not the default, so 2D models keep their 2015 names
        config["pool_size"] = pool_size if _is_int(pool_size) else "_".join(
            "x".join(map(str, p)) for p in pools)
    if doubling != "per_level":
        config["doubling"] = doubling
    record = CONFIG_PREFIX + "".join(f"-{k}.{v}" for k, v in config.items())
    twice = 2 if doubling == "before_pool" else 1  # the second convolution's factor
    inputs = keras.Input(shape, name="image")
    x, skips = layers.Identity(name=record)(inputs), {}
    for level in range(1, depth + 1):
        n = filters * 2 ** (level - 1)
        x = conv_block(x, (n, n * twice), name=f"enc{level}", **options)
        if dropout and level == depth:
            x = layers.Dropout(dropout, name=f"enc{level}_dropout")(x)
        skips[level] = x
        x = SPATIAL[len(pools[0])].pool(pools[level - 1], name=f"enc{level}_pool")(x)
    x = conv_block(x, (filters * 2**depth, filters * 2**depth * twice), name="bottleneck",
                   **options)
    if dropout:
        x = layers.Dropout(dropout, name="bottleneck_dropout")(x)
    for level in range(depth, 0, -1):
        x = up_block(x, skips[level], skips[level].shape[-1], name=f"dec{level}",
                     crop=crops.get(level, 0), upsampling=upsampling, pool_size=pools[level - 1],
                     up_filters=x.shape[-1] if twice == 2 else None, **options)
    x = SPATIAL[len(pools[0])].conv(n_classes, 1, name="head")(x)
    # A float32 last layer keeps the scores (and the loss) in float32 under mixed precision.
    outputs = layers.Activation(output_activation or "linear", dtype="float32",
                                name=f"head_{output_activation or 'logits'}")(x)
    return keras.Model(inputs, outputs, name=name)


def unet_config(model):
    """The options :func:`build_unet` built ``model`` with (``output_activation`` as
    ``"auto"`` chose it; ``pool_size`` an int or a list of tuples per level), so that
    ``build_unet(**unet_config(model))`` builds the same network. They are the name of the
    layer after the input (``unet_config-depth.4-...``), which ``model.save`` keeps and any
    Keras loads; a ValueError says so for another model.

    Example:
        >>> config = unet_config(build_unet((None, None, 3), 2, depth=2, filters=8))
        >>> config["input_shape"], config["depth"], config["output_activation"]
        ((None, None, 3), 2, 'softmax')
    """
    names = [x.name for x in getattr(model, "layers", ()) if x.name.startswith(CONFIG_PREFIX + "-")]
    if not names:
        raise ValueError(f"model {getattr(model, 'name', model)!r} has no layer named "
                         f"{CONFIG_PREFIX}-...: it was not built by keras_unet.build_unet, "
                         f"which records its options there")
    config = dict(item.partition(".")[::2] for item in names[0].split("-")[1:])
    for key, text in config.items():
        with contextlib.suppress(ValueError, SyntaxError):  # a name stays a string
            config[key] = ast.literal_eval(text)
    shape = tuple(None if n == "None" else int(n) for n in config["input_shape"].split("x"))
    pools = config.get("pool_size", 2)  # older models: 2 and per_level
    if isinstance(pools, str):
        pools = [tuple(int(n) for n in p.split("x")) for p in pools.split("_")]
    return dict(config, input_shape=shape, dropout=float(config["dropout"]), name=model.name,
                pool_size=pools, doubling=config.get("doubling", "per_level"))
