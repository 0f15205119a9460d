"""The U-Net of Ronneberger, Fischer and Brox (2015), built with Keras 3.

Only ``keras`` and ``keras.ops`` are used, so the model builds and trains on the
TensorFlow, JAX and PyTorch backends alike.

The network is a contracting path (per level: two 3x3 convolutions, then a 2x2
max-pooling that halves the size while the next level doubles the filters), a
bottleneck, and an expanding path (per level: a 2x2 up-convolution that halves the
filters, concatenation with the skip connection of the same level, two 3x3
convolutions), closed by a 1x1 convolution to the classes. Layer names follow the
paper's figure: ``enc1_conv1`` ... ``bottleneck_conv2``, ``dec4_upconv`` ...
``dec1_conv2``, ``head``; decoder level *k* takes the skip connection of encoder
level *k*.
"""

import keras
from keras import layers

PADDINGS = ("same", "valid")
UPSAMPLINGS = ("transpose", "bilinear")
#: Batch-normalisation momentum. Keras's default of 0.99 lets the moving statistics
#: lag far behind the weights on the few hundred steps of a small dataset (a 32-filter
#: U-Net collapsed to one class on ISBI 2012 after ~240 steps); 0.9 trains well.
BATCH_NORM_MOMENTUM = 0.9


# --------------------------------------------------------------------------- sizes


def _check_choice(value, choices, argument):
    if value not in choices:
        raise ValueError(
            f"{argument} must be one of {', '.join(repr(c) for c in choices)}; got {value!r}"
        )


def check_int(value, argument, minimum=1):
    """Refuse ``value`` unless it is an ``int`` (not a bool) >= ``minimum``; the
    message names ``argument``. The one integer check of the model's arguments, and of
    the metrics' ``n_classes``.

    Example:
        >>> check_int(4, "depth")
        >>> check_int(0, "depth")
        Traceback (most recent call last):
        ValueError: depth must be an integer >= 1; got 0
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{argument} must be an integer >= {minimum}; got {value!r}")


def _trace_size(size, depth, padding):
    """Follow one spatial size through the network; None if it does not fit."""
    if padding == "same":
        return size if size % 2**depth == 0 else None
    for _ in range(depth):  # two 3x3 valid convolutions, then a 2x2 pooling
        size -= 4
        if size < 2 or size % 2:
            return None
        size //= 2
    size -= 4  # bottleneck
    for _ in range(depth):  # 2x2 up-convolution doubles, two 3x3 convolutions
        if size < 1:
            return None
        size = 2 * size - 4
    return size if size >= 1 else None


def output_size(input_size, depth=4, padding="valid"):
    """Spatial size of the U-Net's output for one input side.

    With ``padding="same"`` the output is as large as the input; with
    ``padding="valid"`` every 3x3 convolution trims one pixel on each side, so the
    output is smaller (the paper's 572 -> 388 for depth 4).

    Raises:
        ValueError: if ``input_size`` does not fit, naming the nearest sizes that do.

    Example:
        >>> output_size(572, depth=4, padding="valid")
        388
        >>> output_size(256, depth=4, padding="same")
        256
    """
    check_int(input_size, "input_size")
    check_int(depth, "depth")
    _check_choice(padding, PADDINGS, "padding")
    size = _trace_size(input_size, depth, padding)
    if size is None:
        near = ", ".join(str(s) for s in valid_input_sizes(input_size, depth, padding))
        smallest = smallest_input_size(depth, padding)
        if input_size < smallest:
            rule = (f"at least {smallest}, the smallest input it takes (its output is then "
                    f"{_trace_size(smallest, depth, padding)} px)")
        elif padding == "same":
            rule = f"a multiple of {2**depth} (2**depth)"
        else:
            rule = "even before each 2x2 max-pooling, after the 3x3 valid convolutions"
        raise ValueError(
            f"input size {input_size} does not fit a depth-{depth} U-Net with "
            f"padding={padding!r}: it must be {rule}. Nearest sizes that fit: {near}"
        )
    return size


def smallest_input_size(depth=4, padding="valid"):
    """The smallest input side a U-Net of this depth and padding takes: a smaller tile
    or image has no output (valid padding) or no pixel left to pool (same padding).

    Example:
        >>> smallest_input_size(4, "valid"), smallest_input_size(4, "same")
        (188, 16)
    """
    return valid_input_sizes(1, depth, padding)[-1]


def valid_input_sizes(near, depth=4, padding="valid"):
    """The input sizes that fit the network closest to ``near``: ``[near]`` if it
    fits, else the largest fitting size below it (if any) and the smallest above.

    Example:
        >>> valid_input_sizes(570, depth=4, padding="valid")
        [556, 572]
        >>> valid_input_sizes(250, depth=4, padding="same")
        [240, 256]
    """
    check_int(near, "near")
    check_int(depth, "depth")
    _check_choice(padding, PADDINGS, "padding")
    if _trace_size(near, depth, padding) is not None:
        return [near]
    sizes = [s for s in range(near - 1, 0, -1) if _trace_size(s, depth, padding)][:1]
    above = near + 1
    while _trace_size(above, depth, padding) is None:
        above += 1
    return sizes + [above]


def receptive_border(depth=4):
    """Pixels a valid-padding U-Net's convolutions consume on each side of its input:
    ``input size = output size + 2 * receptive_border(depth)``. It is also how far the
    zero padding of a same-padding U-Net reaches into its output, and the
    ``output_crop`` of :func:`keras_unet.data.make_dataset` for a valid model.

    Example:
        >>> receptive_border(4)   # the paper: 572 -> 388
        92
        >>> [receptive_border(d) for d in (1, 2, 3)]
        [8, 20, 44]
    """
    check_int(depth, "depth")
    smallest = valid_input_sizes(1, depth, "valid")[-1]
    return (smallest - _trace_size(smallest, depth, "valid")) // 2


def _skip_crops(depth):
    """Pixels to crop on each side of encoder level k's output (k = 1..depth) so that
    it matches decoder level k's up-sampled input under valid padding.

    The difference does not depend on the input size, so the crops are fixed numbers
    and the model accepts inputs of unknown size.
    """
    size = valid_input_sizes(1, depth, "valid")[-1]
    skips = []
    for _ in range(depth):
        size -= 4
        skips.append(size)
        size //= 2
    size -= 4
    crops = {}
    for level in range(depth, 0, -1):
        size *= 2
        crops[level] = (skips[level - 1] - size) // 2
        size -= 4
    return crops


# -------------------------------------------------------------------------- blocks


def conv_block(x, filters, *, name, padding="same", batch_norm=False, activation="relu"):
    """Two 3x3 convolutions, each followed by (batch normalisation and) the
    activation: one level of the contracting or expanding path.

    Layers are named ``{name}_conv1``, ``{name}_conv2`` (and ``{name}_bn1``,
    ``{name}_act1``, ... with batch normalisation).

    Example:
        >>> x = keras.Input((64, 64, 1))
        >>> conv_block(x, 16, name="enc1", padding="valid").shape
        (None, 60, 60, 16)
    """
    for i in (1, 2):
        x = layers.Conv2D(
            filters,
            3,
            padding=padding,
            use_bias=not batch_norm,  # the batch normalisation's beta is the bias
            activation=None if batch_norm else activation,
            kernel_initializer="he_normal",  # the paper's N(0, sqrt(2/N)) initialisation
            name=f"{name}_conv{i}",
        )(x)
        if batch_norm:
            x = layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM, name=f"{name}_bn{i}")(x)
            x = layers.Activation(activation, name=f"{name}_act{i}")(x)
    return x


def up_block(x, skip, filters, *, name, crop=0, padding="same", batch_norm=False,
             upsampling="transpose", activation="relu"):
    """One level of the expanding path: up-sample x2 while halving the filters
    (``{name}_upconv``), concatenate the skip connection (centre-cropped by ``crop``
    pixels a side for valid padding), then a :func:`conv_block`.

    ``upsampling="transpose"`` is the paper's 2x2 up-convolution (a transposed
    convolution with stride 2); ``"bilinear"`` is bilinear up-sampling followed by a
    2x2 convolution, which has the same number of parameters.

    Example:
        >>> x, skip = keras.Input((28, 28, 32)), keras.Input((64, 64, 16))
        >>> up_block(x, skip, 16, name="dec1", crop=4, padding="valid").shape
        (None, 52, 52, 16)
    """
    if upsampling == "transpose":
        x = layers.Conv2DTranspose(
            filters, 2, strides=2, activation=activation,
            kernel_initializer="he_normal", name=f"{name}_upconv",
        )(x)
    else:
        x = layers.UpSampling2D(2, interpolation="bilinear", name=f"{name}_upsample")(x)
        x = layers.Conv2D(
            filters, 2, padding="same", activation=activation,
            kernel_initializer="he_normal", name=f"{name}_upconv",
        )(x)
    if crop:
        skip = layers.Cropping2D(crop, name=f"{name}_crop")(skip)
    x = layers.Concatenate(name=f"{name}_concat")([skip, x])
    return conv_block(x, filters, name=name, padding=padding,
                      batch_norm=batch_norm, activation=activation)


# --------------------------------------------------------------------------- model


def _check_input_shape(input_shape, depth, padding):
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else None
    if shape is None or len(shape) != 3:
        hint = ""
        if shape is not None and len(shape) == 2:
            hint = f"; add a channel axis, e.g. {shape + (1,)} for gray images"
        raise ValueError(
            f"input_shape must be (height, width, channels); got {input_shape!r}{hint}"
        )
    *spatial, channels = shape
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise ValueError(
            f"input_shape's channel axis must be a known integer >= 1; got {channels!r} "
            f"in {input_shape!r}"
        )
    # (1, 64, 64) or (3, 256, 256): channels first, as PyTorch orders them
    first = shape[0] in (1, 3) and isinstance(channels, int) and channels > 4
    for axis, size in zip(("height", "width"), spatial):
        if size is None:
            continue
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"input {axis} must be None or an integer >= 1; got {size!r}")
        try:
            output_size(size, depth, padding)
        except ValueError as err:
            if first:
                raise ValueError(
                    f"input height {shape[0]} does not fit a depth-{depth} U-Net "
                    f"(input_shape {input_shape!r} has {channels} channels): did you mean "
                    f"{(*shape[1:], shape[0])}? the channel axis goes last") from None
            raise ValueError(f"input {axis}: {err}") from None
    return shape


def build_unet(input_shape, n_classes, *, depth=4, filters=64, padding="same",
               batch_norm=False, dropout=0.5, upsampling="transpose", activation="relu",
               output_activation="auto", name="unet"):
    """Build the U-Net of Ronneberger, Fischer and Brox (2015) as a Keras functional model.

    Args:
        input_shape: ``(height, width, channels)``. Height and width may be ``None``
            (any size that fits, checked when the model runs). A known size must fit
            the depth and padding (see :func:`valid_input_sizes`).
        n_classes: output channels of the 1x1 head. ``1`` for a binary mask with a
            sigmoid; ``>= 2`` for class indices with a softmax (the paper used 2).
        depth: number of 2x2 max-poolings (the paper's 4).
        filters: filters of the first level; doubled at each level down and halved at
            each level up (the paper's 64, so 1024 in the bottleneck).
        padding: ``"same"`` keeps the output as large as the input; ``"valid"`` is the
            paper exactly: unpadded convolutions, a smaller output (572 -> 388) and
            skip connections centre-cropped, for seamless overlap-tile prediction.
        batch_norm: batch normalisation after every 3x3 convolution (not in the
            paper; helps small batches train). Momentum 0.9, see
            ``BATCH_NORM_MOMENTUM``.
        dropout: dropout rate at the end of the contracting path (after the deepest
            encoder level and after the bottleneck, as in the paper's model);
            ``0`` or ``None`` for none.
        upsampling: ``"transpose"`` for the paper's 2x2 up-convolution, or
            ``"bilinear"`` for bilinear up-sampling followed by a 2x2 convolution.
            (With Keras 3.15 on TensorFlow, a bilinear model fails when called on a
            second input size, a Keras bug in ``ops.image.resize``; fixed-size inputs
            and :func:`keras_unet.inference.predict_tiled` work.)
        activation: activation of every convolution but the head (the paper's ReLU).
        output_activation: ``"auto"`` (sigmoid for ``n_classes=1``, softmax otherwise),
            any Keras activation name, or ``None`` for logits. The output is float32
            even under a mixed-precision policy.
        name: the model's name.

    Returns:
        A ``keras.Model`` from an input named ``image`` to per-pixel class scores
        of shape ``(batch, out_height, out_width, n_classes)``.

    Raises:
        ValueError: for a bad argument, naming it and what would work; for an input
            size that does not fit, naming the nearest sizes that do.

    Example:
        >>> model = build_unet((572, 572, 1), n_classes=2, padding="valid")
        >>> model.output_shape, model.count_params()
        ((None, 388, 388, 2), 31030658)
        >>> build_unet((None, None, 3), n_classes=1, filters=16).output_shape
        (None, None, None, 1)
    """
    check_int(n_classes, "n_classes")
    check_int(depth, "depth")
    check_int(filters, "filters")
    _check_choice(padding, PADDINGS, "padding")
    _check_choice(upsampling, UPSAMPLINGS, "upsampling")
    if dropout is None:
        dropout = 0.0
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ValueError(f"dropout must be a rate in [0, 1) or None; got {dropout!r}")
    try:
        keras.activations.get(activation)
    except ValueError:
        raise ValueError(f"activation {activation!r} is not a Keras activation") from None
    if output_activation == "auto":
        output_activation = "sigmoid" if n_classes == 1 else "softmax"
    if output_activation is not None:
        try:
            keras.activations.get(output_activation)
        except ValueError:
            raise ValueError(
                f"output_activation must be 'auto', None (logits) or a Keras activation; "
                f"got {output_activation!r}"
            ) from None
        if n_classes == 1 and output_activation == "softmax":
            raise ValueError(
                "output_activation='softmax' with n_classes=1 always outputs 1; use "
                "'sigmoid' (or 'auto') for a binary mask, or n_classes >= 2"
            )
    shape = _check_input_shape(input_shape, depth, padding)
    crops = _skip_crops(depth) if padding == "valid" else {}
    options = dict(padding=padding, batch_norm=batch_norm, activation=activation)

    inputs = keras.Input(shape, name="image")
    x, skips = inputs, {}
    for level in range(1, depth + 1):
        x = conv_block(x, filters * 2 ** (level - 1), name=f"enc{level}", **options)
        if dropout and level == depth:
            x = layers.Dropout(dropout, name=f"enc{level}_dropout")(x)
        skips[level] = x
        x = layers.MaxPooling2D(2, name=f"enc{level}_pool")(x)
    x = conv_block(x, filters * 2**depth, name="bottleneck", **options)
    if dropout:
        x = layers.Dropout(dropout, name="bottleneck_dropout")(x)
    for level in range(depth, 0, -1):
        x = up_block(x, skips[level], filters * 2 ** (level - 1), name=f"dec{level}",
                     crop=crops.get(level, 0), upsampling=upsampling, **options)
    x = layers.Conv2D(n_classes, 1, name="head")(x)
    # A float32 last layer keeps the scores (and the loss) in float32 under mixed precision.
    suffix = ("logits" if output_activation is None
              else getattr(output_activation, "__name__", str(output_activation)))
    outputs = layers.Activation(output_activation or "linear", dtype="float32",
                                name=f"head_{suffix}")(x)
    return keras.Model(inputs, outputs, name=name)
