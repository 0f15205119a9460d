"""The U-Net (Ronneberger et al. 2015; 3D: Çiçek et al. 2016) in ``keras`` only, one code path:
blocks, size helpers, recorded options; layer names as in its figure: ``enc1_conv1``...``head``."""

import ast
import contextlib
import itertools
import math
import types

import keras
import numpy as np
from keras import layers

from keras_unet import metrics  # noqa: F401  registers the losses and metrics for load_model
from keras_unet.checks import check_bool, check_choice, check_int, check_number, fail

PADDINGS = ("same", "valid")
UPSAMPLINGS = ("transpose", "bilinear")
DOUBLINGS = ("per_level", "before_pool")
#: Batch-normalisation momentum: with Keras's 0.99 a 32-filter U-Net collapsed to one
#: class on ISBI 2012 after ~240 steps (the statistics lag the weights); 0.9 trains well.
BATCH_NORM_MOMENTUM = 0.9
#: The layers of the network per spatial rank (2: images, 3: volumes); the names of its axes.
SPATIAL = {r: types.SimpleNamespace(
    rank=r, conv=getattr(layers, f"Conv{r}D"), upconv=getattr(layers, f"Conv{r}DTranspose"),
    pool=getattr(layers, f"MaxPooling{r}D"), upsample=getattr(layers, f"UpSampling{r}D"),
    crop=getattr(layers, f"Cropping{r}D")) for r in (2, 3)}
AXES = {2: ("height", "width"), 3: ("depth (axis 0)", "height", "width")}
#: Çiçek et al.'s 3D U-Net (2016) with ``padding="valid"``: see build_unet's parameter count.
CICEK_2016 = dict(depth=3, filters=32, batch_norm=True, dropout=0.0, doubling="before_pool")
CONFIG_PREFIX = "unet_config"  # the name of the layer that records build_unet's options


def _pools(pool_size, depth, rank=None):  # as `depth` tuples of `rank` ints (None: its own)
    levels = pool_size if isinstance(pool_size, list) else [pool_size] * depth
    axes = [p if isinstance(p, (tuple, list)) else None for p in levels]  # lists: from JSON
    rank = rank or next((len(p) for p in axes if p is not None), 1)
    with contextlib.suppress(ValueError):
        pools = [tuple(check_int(n, "pool_size") for n in ((p,) * rank if a is None else a))
                 for p, a in zip(levels, axes)]
        if len(pools) == depth and all(len(p) == rank for p in pools):
            return pools
    fail("pool_size", f"an int >= 1, a tuple of {rank} (one per axis) or a list of {depth} "
         f"(depth) of them", pool_size)


def _trace(size, pools, padding):  # (output side, {level: skip crop}) along an axis, or None
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
        size *= pools[level - 1]  # (a side < 1 stays < 1)
        crops[level] = (skips[level - 1] - size) // 2
        size -= 4
    return (size, crops) if size >= 1 else None


def _near(near, pools, padding):  # valid_input_sizes along one axis
    if _trace(near, pools, padding):
        return [near]
    below = next(([s] for s in range(near - 1, 0, -1) if _trace(s, pools, padding)), [])
    return below + [next(s for s in itertools.count(near + 1) if _trace(s, pools, padding))]


def _misfit(size, pools, depth, padding, pool_size, label):  # why a side does not fit
    smallest, square = _near(1, pools, padding)[-1], set(pools) == {2}
    product = "2**depth" if square else " x ".join(map(str, pools))
    if size < smallest:
        rule = (f"at least {smallest}, the smallest input it takes (its output is then "
                f"{_trace(smallest, pools, padding)[0]} px)")
    elif padding == "same":
        rule = f"a multiple of {math.prod(pools)} ({product})"
    else:
        rule = ("even before each 2x2 max-pooling" if square else f"divisible by each level's "
                f"pool size {pools}") + ", after the 3x3 valid convolutions"
    return (f"{label} {size} does not fit a depth-{depth} U-Net with padding={padding!r}"
            + ("" if pool_size == 2 else f" and pool_size={pool_size!r}") + f": it must be "
            f"{rule}. Nearest sizes that fit: " + ", ".join(map(str, _near(size, pools, padding))))


def _axes(sizes, depth, padding, pool_size):  # (sides, pools per axis, axis names), checked
    check_choice(padding, PADDINGS, "padding")
    many = isinstance(sizes, tuple)
    per_axis = [*zip(*_pools(pool_size, check_int(depth, "depth"), len(sizes) if many else None))]
    if not many and len(set(per_axis)) > 1:
        raise ValueError(f"pool_size {pool_size!r} differs between axes: give the input size "
                         f"per axis (a tuple of {len(per_axis)} sizes)")
    return (sizes, per_axis, AXES.get(len(sizes)) or [f"axis {i}" for i in range(len(sizes))]
            ) if many else ((sizes,), per_axis[:1], ["size"])


def output_size(input_size, depth=4, padding="valid", *, pool_size=2):
    """The output side for an input side, or a tuple per axis for a tuple; a ValueError
    names the axis and the nearest sizes that fit.

    Example:
        >>> output_size(572, depth=4, padding="valid"), output_size(256, 4, "same")
        (388, 256)
        >>> output_size((30, 92, 92), 2, "valid", pool_size=[(1, 2, 2), (2, 2, 2)])
        (6, 52, 52)
    """
    out = []
    for side, pools, label in zip(*_axes(input_size, depth, padding, pool_size)):
        if (traced := _trace(check_int(side, "input_size"), pools, padding)) is None:
            raise ValueError(_misfit(side, pools, depth, padding, pool_size, f"input {label}"))
        out.append(traced[0])
    return tuple(out) if isinstance(input_size, tuple) else out[0]


def valid_input_sizes(near, depth=4, padding="valid", *, pool_size=2):
    """``[near]`` if it fits, else the largest fitting size below it (if any) and above (a
    tuple of such lists for a tuple of sides).

    Example:
        >>> valid_input_sizes(570, depth=4, padding="valid")
        [556, 572]
        >>> valid_input_sizes((30, 64, 64), 2, "same", pool_size=(1, 2, 2))
        ([30], [64], [64])
    """
    out = tuple(_near(check_int(side, "near"), pools, padding)
                for side, pools, _ in zip(*_axes(near, depth, padding, pool_size)))
    return out if isinstance(near, tuple) else out[0]


def _per_axis(depth, padding, pool_size, rule):  # one value, or one per axis where they differ
    check_choice(padding, PADDINGS, "padding")
    values = tuple(rule(p, _near(1, p, padding)[-1])
                   for p in zip(*_pools(pool_size, check_int(depth, "depth"))))
    return values[0] if len(set(values)) == 1 else values


def smallest_input_size(depth=4, padding="valid", *, pool_size=2):
    """The smallest input side a U-Net takes (188 at depth 4 with valid padding, 16 with
    same); a tuple per axis where the pool sizes differ between axes.

    Example:
        >>> smallest_input_size(2, "valid", pool_size=[(1, 2, 2), (2, 2, 2)])
        (26, 44, 44)
    """
    return _per_axis(depth, padding, pool_size, lambda pools, smallest: smallest)


def receptive_border(depth=4, *, pool_size=2):
    """Pixels a valid-padding U-Net consumes a side (``input = output + 2 * border``: the
    ``output_crop`` of :func:`keras_unet.data.make_dataset`), a tuple where axes differ.

    Example:
        >>> [receptive_border(d) for d in (1, 2, 3, 4)]   # 4: the paper's 572 -> 388
        [8, 20, 44, 92]
        >>> receptive_border(2, pool_size=[(1, 2, 2), (2, 2, 2)])
        (12, 20, 20)
    """
    return _per_axis(depth, "valid", pool_size,
                     lambda pools, side: (side - _trace(side, pools, "valid")[0]) // 2)


def _skip_crops(depth, pools=None):
    """Pixels cropped a side from encoder level k to match decoder level k (valid padding;
    size-independent): an int, or a tuple per axis where they differ."""
    per_axis = [_trace(_near(1, p, "valid")[-1], p, "valid")[1]
                for p in zip(*(pools or [(2,)] * depth))]
    return {level: (c[0] if len(set(c)) == 1 else c) for level in range(1, depth + 1)
            for c in [tuple(axis[level] for axis in per_axis)]}


#: Layers that act on each pixel alone, or join tensors pixel by pixel.
_PIXELWISE = (layers.Activation, layers.BatchNormalization, layers.Dropout,
              layers.Identity, layers.Concatenate, layers.Add, layers.Multiply, layers.Dense)
_CROPS, _UPS, _WINDOWS = (tuple(getattr(s, k) for s in SPATIAL.values() for k in kinds)
                          for kinds in (["crop"], ["upconv", "upsample"], ["conv", "pool"]))


def padding_reach(model, per_axis=False):
    """How far (px) zero padding reaches into a 2D or 3D model's output (0 for valid padding;
    the farthest over the axes, or ``per_axis`` a tuple), from its layers' kernels, strides,
    paddings, crops and up-sampling; or a ValueError naming a layer.

    Example:
        >>> padding_reach(build_unet((None, None, 1), 2, depth=2, filters=4))
        22
    """
    reach = {id(t): np.zeros((len(t.shape) - 2, 2), int) for t in model.inputs}  # (start, end)
    for layer in (x for x in model.layers if not isinstance(x, layers.InputLayer)):
        c = layer.get_config()
        r = np.max([reach[id(t)] for t in keras.tree.flatten(layer.input)], axis=0)
        if isinstance(layer, _CROPS):
            r = np.maximum(r - np.array(c["cropping"]), 0)
        elif isinstance(layer, _UPS + _WINDOWS):
            size = np.array(c.get("kernel_size") or c.get("pool_size") or c["size"])[:, None]
            stride = np.array(c.get("strides") or c["size"])[:, None]
            if c.get("interpolation") == "bilinear":  # blends 1 more; clamps at the edges
                r = r * stride + size // 2
            elif isinstance(layer, _UPS):
                r = np.where(r > 0, r * stride + size - stride, 0)
            else:  # padded as TensorFlow pads
                span = np.reshape(c.get("dilation_rate", 1), (-1, 1)) * (size - 1) + 1
                total = np.maximum(span - stride, 0) * (c["padding"] == "same")
                r = -(-(r + np.hstack([total // 2, total - total // 2])) // stride)
        elif not isinstance(layer, _PIXELWISE):
            raise ValueError(f"cannot tell how far zero padding reaches through layer "
                             f"{layer.name!r} ({type(layer).__name__})")
        reach[id(layer.output)] = r
    farthest = np.max([reach[id(t)].max(axis=1) for t in model.outputs], axis=0)
    return tuple(map(int, farthest)) if per_axis else int(farthest.max())


def conv_block(x, filters, *, name, padding="same", batch_norm=False, activation="relu"):
    """Two 3x3 (3x3x3) convolutions ``{name}_conv1``, ``{name}_conv2`` of ``filters`` (or a
    pair: each's), each followed by (batch normalisation ``{name}_bn1``, ...) the activation."""
    spatial = SPATIAL[len(x.shape) - 2]
    for i, n in enumerate((filters, filters) if np.isscalar(filters) else filters, 1):
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
    """Up-sample by ``pool_size`` (``{name}_upconv``: kernel = stride = ``pool_size``) to
    ``up_filters`` (None: ``filters``), concatenate ``skip`` (cropped ``crop`` px a side, or a
    tuple per axis), then a :func:`conv_block` of ``filters``."""
    spatial = SPATIAL[len(x.shape) - 2]
    conv = dict(activation=activation, kernel_initializer="he_normal", name=f"{name}_upconv")
    if upsampling == "transpose":
        x = spatial.upconv(up_filters or filters, pool_size, strides=pool_size, **conv)(x)
    else:
        x = spatial.upsample(pool_size, interpolation="bilinear", name=f"{name}_upsample")(x)
        x = spatial.conv(up_filters or filters, pool_size, padding="same", **conv)(x)
    skip = spatial.crop(crop, name=f"{name}_crop")(skip) if crop else skip
    x = layers.Concatenate(name=f"{name}_concat")([skip, x])
    return conv_block(x, filters, name=name, padding=padding,
                      batch_norm=batch_norm, activation=activation)


def _valid_shape(input_shape, depth, padding, pool_size):  # (shape, pools), checked together
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else ()
    if len(shape) not in (3, 4):
        raise ValueError(f"input_shape must be (height, width, channels); got {input_shape!r}"
                         + (f"; add a channel axis, e.g. {shape + (1,)} for gray images" if len(
                             shape) == 2 else " (or (depth, height, width, channels) in 3D)"))
    *spatial, channels = shape
    check_int(channels, "input_shape's channel axis")
    pools = _pools(pool_size, depth, len(spatial))
    first = shape[0] in (1, 3) and channels > 4  # (3, 256, 256): channels first, as in PyTorch
    for axis, size, along in zip(AXES[len(spatial)], spatial, zip(*pools)):
        if size is not None and _trace(check_int(size, f"input {axis}"), along, padding) is None:
            label = f"input {axis}" + (": input size" if len(spatial) == 2 else "")
            raise ValueError(f"input {AXES[len(spatial)][0]} {shape[0]} does not fit a depth-"
                             f"{depth} U-Net (input_shape {input_shape!r} has {channels} channels)"
                             f": did you mean {(*shape[1:], shape[0])}? the channel axis goes last"
                             if first else _misfit(size, along, depth, padding, pool_size, label))
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
    """The U-Net of Ronneberger et al. (2015), or of Çiçek et al. (2016) for volumes: a Keras
    model from an input ``image`` to scores ``(batch, *sides, n_classes)``; a ValueError names
    a bad argument, or a side that does not fit, its axis and the nearest sizes that do.

    Args:
        input_shape: ``(height, width, channels)`` or ``(depth, height, width, channels)``
            (3D); sides may be ``None``.
        n_classes: ``1`` for a binary mask (sigmoid), ``>= 2`` for class indices (softmax;
            the paper's 2) or, with ``multilabel=True``, one sigmoid per label.
        depth, filters: max-poolings (the paper's 4); the first level's filters (64).
        padding: ``"same"`` (output as large as the input) or ``"valid"`` (the paper's
            unpadded convolutions and cropped skips: 572 -> 388).
        batch_norm, dropout: batch normalisation after every 3x3 convolution; the dropout
            rate after the deepest encoder level and the bottleneck (``0``/``None``: none).
        upsampling: ``"transpose"`` (the paper's up-convolution) or ``"bilinear"`` and a
            convolution (2D only; Keras 3.15 on TensorFlow fails on a second input size).
        activation: of every convolution but the head (the paper's ReLU).
        output_activation: ``"auto"`` (sigmoid for one channel or multilabel, else
            softmax), a Keras activation, or ``None`` for logits; float32 always.
        pool_size: an int, a tuple per axis, or a list of ``depth`` of them, one per level
            (``[(1, 2, 2), (2, 2, 2)]``: thick slices); each up-convolution's kernel and stride.
        doubling: ``"per_level"`` (2015) or ``"before_pool"`` (2016: a level's second
            convolution doubles its first's filters; up-convolutions keep their channels).
        name: the model's name.

    Example:
        >>> model = build_unet((572, 572, 1), n_classes=2, padding="valid")
        >>> model.output_shape, model.count_params()
        ((None, 388, 388, 2), 31030658)

    Çiçek et al.'s 3D U-Net has 19,077,859 parameters, 19,073,187 trainable. Its description
    has 19,070,851 weights and biases (the network without batch normalisation); batch
    normalisation drops the 14 3x3x3 convolutions' 2,336 biases (its beta replaces them) and
    adds 4 x 2,336 (gamma, beta, moving mean and variance; 2 x 2,336 trainable). The paper's
    19,069,955 leaves out the up-convolutions' 896 biases (512 + 256 + 128).

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
        fail("upsampling", "'transpose' in 3D (Keras's UpSampling3D is nearest only)", upsampling)
    crops = _skip_crops(depth, pools) if padding == "valid" else {}
    options = dict(padding=padding, batch_norm=batch_norm, activation=activation)
    # the options as a layer name, which Keras saves and TensorFlow takes (letters, digits, _.-)
    config = dict(options, input_shape="x".join(map(str, shape)), n_classes=n_classes, depth=depth,
                  dropout=np.format_float_positional(dropout, trim="-"), multilabel=multilabel,
                  filters=filters, output_activation=output_activation, upsampling=upsampling)
    if pool_size != 2:  # recorded where not the default, so 2D models keep their 2015 names
        config["pool_size"] = pool_size if isinstance(pool_size, int) else "_".join(
            "x".join(map(str, p)) for p in pools)
    config.update({"doubling": doubling} if doubling != "per_level" else {})
    record = CONFIG_PREFIX + "".join(f"-{k}.{v}" for k, v in config.items())
    twice = 2 if doubling == "before_pool" else 1  # the second convolution's factor
    inputs = keras.Input(shape, name="image")
    x, skips = layers.Identity(name=record)(inputs), {}
    for level in range(1, depth + 2):  # the encoder's levels, then the bottleneck
        n, block = filters * 2 ** (level - 1), f"enc{level}" if level <= depth else "bottleneck"
        x = conv_block(x, (n, n * twice), name=block, **options)
        if dropout and level >= depth:
            x = layers.Dropout(dropout, name=f"{block}_dropout")(x)
        if level <= depth:
            skips[level] = x
            x = SPATIAL[len(pools[0])].pool(pools[level - 1], name=f"enc{level}_pool")(x)
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
    """The options :func:`build_unet` built ``model`` with (``output_activation`` as "auto"
    chose it, ``pool_size`` an int or a list per level), so that ``build_unet(**unet_config(
    model))`` builds the same network. They are the name of the layer after the input
    (``unet_config-depth.4-...``), which ``model.save`` keeps and any Keras loads.

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
    if isinstance(pools, str):  # per level: 1x2x2_2x2x2
        pools = [tuple(map(int, p.split("x"))) for p in pools.split("_")]
    return dict(config, input_shape=shape, dropout=float(config["dropout"]), name=model.name,
                pool_size=pools, doubling=config.get("doubling", "per_level"))
