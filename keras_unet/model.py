"""The U-Net of Ronneberger, Fischer and Brox (2015) in ``keras`` and ``keras.ops`` only (every
backend), its blocks, its size helpers and its recorded options. Layer names follow the
paper's figure: ``enc1_conv1`` ... ``bottleneck_conv2``, ``dec4_upconv`` ... ``head``."""

import ast
import contextlib
import itertools
import types

import keras
import numpy as np
from keras import layers

from keras_unet.checks import check_bool, check_choice, check_int, check_number, fail

PADDINGS = ("same", "valid")
UPSAMPLINGS = ("transpose", "bilinear")
#: Batch-normalisation momentum: with Keras's 0.99 a 32-filter U-Net collapsed to one
#: class on ISBI 2012 after ~240 steps (the statistics lag the weights); 0.9 trains well.
BATCH_NORM_MOMENTUM = 0.9
#: The 2D choices of the network, in one place (a 3D variant swaps them).
SPATIAL = types.SimpleNamespace(rank=2, conv=layers.Conv2D, upconv=layers.Conv2DTranspose,
                                pool=layers.MaxPooling2D, upsample=layers.UpSampling2D,
                                crop=layers.Cropping2D)
#: The name of the layer that records build_unet's options starts with this.
CONFIG_PREFIX = "unet_config"


def _trace_size(size, depth, padding):
    """The output side for one input side; None if it does not fit."""
    scale = 2**depth
    if padding == "same":
        return size if size % scale == 0 else None
    # valid: each level's two 3x3 convolutions trim 4 px before a pooling halves the size
    # and after an up-convolution doubles it; the bottleneck's input must be even at each
    # pooling and keep >= 4 px (3 at depth 1) so that the way up keeps >= 1 px.
    bottom, rest = divmod(size - 4 * (scale - 1), scale)
    if rest or bottom < (7 if depth == 1 else 8):
        return None
    return scale * (bottom - 4) - 4 * (scale - 1)


def output_size(input_size, depth=4, padding="valid"):
    """The output side for one input side; a ValueError names the nearest sizes that fit.

    Example:
        >>> output_size(572, depth=4, padding="valid"), output_size(256, 4, "same")
        (388, 256)
    """
    check_int(input_size, "input_size")
    near = valid_input_sizes(input_size, depth, padding)
    if near == [input_size]:
        return _trace_size(input_size, depth, padding)
    smallest = smallest_input_size(depth, padding)
    if input_size < smallest:
        rule = (f"at least {smallest}, the smallest input it takes (its output is then "
                f"{_trace_size(smallest, depth, padding)} px)")
    else:
        rule = (f"a multiple of {2**depth} (2**depth)" if padding == "same"
                else "even before each 2x2 max-pooling, after the 3x3 valid convolutions")
    raise ValueError(f"input size {input_size} does not fit a depth-{depth} U-Net with "
                     f"padding={padding!r}: it must be {rule}. Nearest sizes that fit: "
                     + ", ".join(map(str, near)))


def smallest_input_size(depth=4, padding="valid"):
    """The smallest input side a U-Net takes: 188 at depth 4 with valid padding, 16 with same."""
    return valid_input_sizes(1, depth, padding)[-1]


def valid_input_sizes(near, depth=4, padding="valid"):
    """``[near]`` if it fits, else the largest fitting size below it (if any) and above.

    Example:
        >>> valid_input_sizes(570, depth=4, padding="valid")
        [556, 572]
    """
    check_int(near, "near")
    check_int(depth, "depth")
    check_choice(padding, PADDINGS, "padding")
    if _trace_size(near, depth, padding) is not None:
        return [near]
    below = next(([s] for s in range(near - 1, 0, -1) if _trace_size(s, depth, padding)), [])
    return below + [next(s for s in itertools.count(near + 1) if _trace_size(s, depth, padding))]


def receptive_border(depth=4):
    """Pixels a valid-padding U-Net consumes a side (``input = output + 2 * border``), the
    ``output_crop`` of :func:`keras_unet.data.make_dataset` for a valid model.

    Example:
        >>> [receptive_border(d) for d in (1, 2, 3, 4)]   # 4: the paper's 572 -> 388
        [8, 20, 44, 92]
    """
    return 6 * 2 ** check_int(depth, "depth") - 4


def _skip_crops(depth):
    """Pixels cropped a side from encoder level k to match decoder level k (valid padding)."""
    return {level: 12 * 2 ** (depth - level) - 8 for level in range(1, depth + 1)}


#: Layers that act on each pixel alone, or join tensors pixel by pixel.
_PIXELWISE = (layers.Activation, layers.BatchNormalization, layers.Dropout,
              layers.Identity, layers.Concatenate, layers.Add, layers.Multiply, layers.Dense)


def padding_reach(model):
    """How far (px) zero padding reaches into a model's output (0 for valid padding), from its
    layers' kernels, strides, paddings, crops and up-sampling; or a ValueError naming a layer.

    Example:
        >>> padding_reach(build_unet((None, None, 1), 2, depth=2, filters=4))
        22
    """
    reach = {id(t): np.zeros((SPATIAL.rank, 2), int) for t in model.inputs}  # axis x (start, end)
    for layer in (x for x in model.layers if not isinstance(x, layers.InputLayer)):
        c = layer.get_config()
        r = np.max([reach[id(t)] for t in keras.tree.flatten(layer.input)], axis=0)
        if isinstance(layer, SPATIAL.crop):
            r = np.maximum(r - np.array(c["cropping"]), 0)
        elif isinstance(layer, (SPATIAL.upconv, SPATIAL.upsample, SPATIAL.conv, SPATIAL.pool)):
            size = np.array(c.get("kernel_size") or c.get("pool_size") or c["size"])[:, None]
            stride = np.array(c.get("strides") or c["size"])[:, None]
            if c.get("interpolation") == "bilinear":  # blends 1 more; clamps at the edges
                r = r * stride + size // 2
            elif isinstance(layer, (SPATIAL.upconv, SPATIAL.upsample)):
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
    """Two 3x3 convolutions ``{name}_conv1``, ``{name}_conv2``, each followed by (batch
    normalisation ``{name}_bn1``, ... and) the activation."""
    for i in (1, 2):
        x = SPATIAL.conv(filters, 3, padding=padding, use_bias=not batch_norm,  # BN's beta
                         activation=None if batch_norm else activation,
                         kernel_initializer="he_normal",  # the paper's N(0, sqrt(2/N))
                         name=f"{name}_conv{i}")(x)
        if batch_norm:
            x = layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM, name=f"{name}_bn{i}")(x)
            x = layers.Activation(activation, name=f"{name}_act{i}")(x)
    return x


def up_block(x, skip, filters, *, name, crop=0, padding="same", batch_norm=False,
             upsampling="transpose", activation="relu"):
    """Up-sample x2 halving the filters (``{name}_upconv``), concatenate ``skip`` (cropped
    ``crop`` px a side), then a :func:`conv_block`."""
    conv = dict(activation=activation, kernel_initializer="he_normal", name=f"{name}_upconv")
    if upsampling == "transpose":
        x = SPATIAL.upconv(filters, 2, strides=2, **conv)(x)
    else:
        x = SPATIAL.upsample(2, interpolation="bilinear", name=f"{name}_upsample")(x)
        x = SPATIAL.conv(filters, 2, padding="same", **conv)(x)
    if crop:
        skip = SPATIAL.crop(crop, name=f"{name}_crop")(skip)
    x = layers.Concatenate(name=f"{name}_concat")([skip, x])
    return conv_block(x, filters, name=name, padding=padding,
                      batch_norm=batch_norm, activation=activation)


def _valid_shape(input_shape, depth, padding):
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else ()
    if len(shape) != SPATIAL.rank + 1:
        hint = f"; add a channel axis, e.g. {shape + (1,)} for gray images"
        raise ValueError(f"input_shape must be (height, width, channels); got {input_shape!r}"
                         + (hint if len(shape) == SPATIAL.rank else ""))
    *spatial, channels = shape
    check_int(channels, "input_shape's channel axis")
    first = shape[0] in (1, 3) and channels > 4  # (3, 256, 256): channels first, as in PyTorch
    for axis, size in zip(("height", "width"), spatial):
        if size is not None:
            check_int(size, f"input {axis}")
            try:
                output_size(size, depth, padding)
            except ValueError as err:
                raise ValueError(f"input height {shape[0]} does not fit a depth-{depth} U-Net "
                                 f"(input_shape {input_shape!r} has {channels} channels): did you "
                                 f"mean {(*shape[1:], shape[0])}? the channel axis goes last"
                                 if first else f"input {axis}: {err}") from None
    return shape


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
               output_activation="auto", multilabel=False, name="unet"):
    """The U-Net of Ronneberger, Fischer and Brox (2015): a Keras model from an input ``image``
    to scores ``(batch, out_height, out_width, n_classes)``; a ValueError names a bad
    argument, or for an input size that does not fit, the nearest sizes that do.

    Args:
        input_shape: ``(height, width, channels)``; height and width may be ``None``.
        n_classes: output channels: ``1`` for a binary mask (sigmoid), ``>= 2`` for class
            indices (softmax; the paper's 2) or, with ``multilabel=True``, one sigmoid per label.
        depth, filters: 2x2 max-poolings (the paper's 4); filters of the first level, doubled
            at each level down (the paper's 64).
        padding: ``"same"`` (output as large as the input) or ``"valid"`` (the paper:
            unpadded convolutions, 572 -> 388, cropped skip connections).
        batch_norm: batch normalisation after every 3x3 convolution.
        dropout: rate after the deepest encoder level and the bottleneck; ``0``/``None``.
        upsampling: ``"transpose"`` (the paper's 2x2 up-convolution) or ``"bilinear"`` and
            a 2x2 convolution (Keras 3.15 on TensorFlow fails on a second input size).
        activation: of every convolution but the head (the paper's ReLU).
        output_activation: ``"auto"`` (sigmoid for one channel or multilabel, else
            softmax), a Keras activation, or ``None`` for logits; float32 always.
        name: the model's name.

    Example:
        >>> model = build_unet((572, 572, 1), n_classes=2, padding="valid")
        >>> model.output_shape, model.count_params()
        ((None, 388, 388, 2), 31030658)
    """
    for value, argument in ((n_classes, "n_classes"), (depth, "depth"), (filters, "filters")):
        check_int(value, argument)
    check_choice(padding, PADDINGS, "padding")
    check_choice(upsampling, UPSAMPLINGS, "upsampling")
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
    shape = _valid_shape(input_shape, depth, padding)
    crops = _skip_crops(depth) if padding == "valid" else {}
    options = dict(padding=padding, batch_norm=batch_norm, activation=activation)
    # the options as a layer name, which Keras saves and TensorFlow takes (letters, digits, _.-)
    config = dict(options, input_shape="x".join(map(str, shape)), n_classes=n_classes, depth=depth,
                  dropout=np.format_float_positional(dropout, trim="-"), multilabel=multilabel,
                  filters=filters, output_activation=output_activation, upsampling=upsampling)
    record = CONFIG_PREFIX + "".join(f"-{k}.{v}" for k, v in config.items())
    inputs = keras.Input(shape, name="image")
    x, skips = layers.Identity(name=record)(inputs), {}
    for level in range(1, depth + 1):
        x = conv_block(x, filters * 2 ** (level - 1), name=f"enc{level}", **options)
        if dropout and level == depth:
            x = layers.Dropout(dropout, name=f"enc{level}_dropout")(x)
        skips[level] = x
        x = SPATIAL.pool(2, name=f"enc{level}_pool")(x)
    x = conv_block(x, filters * 2**depth, name="bottleneck", **options)
    if dropout:
        x = layers.Dropout(dropout, name="bottleneck_dropout")(x)
    for level in range(depth, 0, -1):
        x = up_block(x, skips[level], filters * 2 ** (level - 1), name=f"dec{level}",
                     crop=crops.get(level, 0), upsampling=upsampling, **options)
    x = SPATIAL.conv(n_classes, 1, name="head")(x)
    # A float32 last layer keeps the scores (and the loss) in float32 under mixed precision.
    outputs = layers.Activation(output_activation or "linear", dtype="float32",
                                name=f"head_{output_activation or 'logits'}")(x)
    return keras.Model(inputs, outputs, name=name)


def unet_config(model):
    """The options :func:`build_unet` built ``model`` with (``output_activation`` as
    ``"auto"`` chose it), so that ``build_unet(**unet_config(model))`` builds the same
    network. They are the name of the layer after the input (``unet_config-depth.4-...``),
    which ``model.save`` keeps and any Keras loads; a ValueError says so for another model.

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
    return dict(config, input_shape=shape, dropout=float(config["dropout"]), name=model.name)
