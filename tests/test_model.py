"""keras_unet/model.py: the paper's numbers, shapes, errors, training, backends, saving."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from keras_unet import build_unet, output_size, receptive_border, valid_input_sizes
from keras_unet.model import BATCH_NORM_MOMENTUM, _skip_crops, padding_reach, unet_config

PAPER_PARAMS = 31_030_658


def _layers_of(model, cls):
    return [layer for layer in model.layers if type(layer) is cls]


# ------------------------------------------------------------------ the 2015 paper


@pytest.fixture(scope="module")
def paper_model():
    return build_unet((572, 572, 1), 2, padding="valid")


def test_paper_parameter_count_and_shapes(paper_model):
    assert paper_model.count_params() == PAPER_PARAMS
    assert paper_model.input_shape == (None, 572, 572, 1)
    assert paper_model.output_shape == (None, 388, 388, 2)


def test_paper_has_23_convolution_layers(paper_model):
    # 18 3x3 convolutions + the 1x1 head are Conv2D; the 4 up-convolutions are
    # Conv2DTranspose (not a Conv2D subclass in Keras 3): 23 in all, as in the paper.
    conv = _layers_of(paper_model, keras.layers.Conv2D)
    upconv = _layers_of(paper_model, keras.layers.Conv2DTranspose)
    assert (len(conv), len(upconv)) == (19, 4)
    assert [layer.kernel_size for layer in conv].count((3, 3)) == 18
    assert paper_model.get_layer("head").kernel_size == (1, 1)
    assert all(layer.kernel_size == (2, 2) and layer.strides == (2, 2) for layer in upconv)


def test_paper_feature_map_sizes_follow_the_figure(paper_model):
    # Figure 1 of the paper: sizes after each level's second convolution.
    sizes = {
        "enc1_conv2": 568, "enc2_conv2": 280, "enc3_conv2": 136, "enc4_conv2": 64,
        "bottleneck_conv2": 28, "dec4_upconv": 56, "dec4_conv2": 52,
        "dec3_conv2": 100, "dec2_conv2": 196, "dec1_conv2": 388,
    }
    for name, size in sizes.items():
        assert paper_model.get_layer(name).output.shape[1:3] == (size, size), name
    filters = {"enc1_conv1": 64, "enc4_conv2": 512, "bottleneck_conv2": 1024,
               "dec4_upconv": 512, "dec1_conv2": 64, "head": 2}
    for name, n in filters.items():
        assert paper_model.get_layer(name).output.shape[-1] == n, name
    # skip connections centre-cropped: 64 -> 56, 136 -> 104, 280 -> 200, 568 -> 392
    assert {lvl: paper_model.get_layer(f"dec{lvl}_crop").output.shape[1]
            for lvl in (1, 2, 3, 4)} == {4: 56, 3: 104, 2: 200, 1: 392}


def test_layer_names_read_like_the_figure(paper_model):
    names = [layer.name for layer in paper_model.layers]
    assert names[0] == "image" and names[1].startswith("unet_config-")  # the options
    assert names[2:4] == ["enc1_conv1", "enc1_conv2"]
    assert names[-2:] == ["head", "head_softmax"]
    for name in ("enc4_pool", "bottleneck_conv1", "bottleneck_conv2", "dec4_upconv",
                 "dec4_concat", "dec1_upconv", "dec1_conv2"):
        assert name in names
    assert paper_model.name == "unet"


def test_dropout_at_end_of_contracting_path(paper_model):
    drops = _layers_of(paper_model, keras.layers.Dropout)
    assert [(d.name, d.rate) for d in drops] == [("enc4_dropout", 0.5), ("bottleneck_dropout", 0.5)]
    assert not _layers_of(build_unet((64, 64, 1), 2, filters=4, dropout=0), keras.layers.Dropout)
    assert not _layers_of(build_unet((64, 64, 1), 2, filters=4, dropout=None), keras.layers.Dropout)


def test_bilinear_upsampling_has_the_paper_parameter_count():
    model = build_unet((572, 572, 1), 2, padding="valid", upsampling="bilinear")
    assert model.count_params() == PAPER_PARAMS
    assert model.output_shape == (None, 388, 388, 2)
    assert len(_layers_of(model, keras.layers.UpSampling2D)) == 4


# ------------------------------------------------------------------- size helpers


def test_output_size():
    assert output_size(572, 4, "valid") == 388
    assert output_size(188, 4, "valid") == 4
    assert output_size(256, 4, "same") == 256
    # smallest valid inputs: depth 1: 18 -> 14 -> pool 7 -> 3 -> up 6 -> 2;
    # depth 2: 44 -> 40 -> 20 -> 16 -> 8 -> 4 -> 8 -> 4 -> 8 -> 4
    assert [valid_input_sizes(1, d, "valid")[0] for d in (1, 2, 3)] == [18, 44, 92]
    assert [output_size(s, d, "valid") for d, s in ((1, 18), (2, 44), (3, 92))] == [2, 4, 4]


def test_valid_input_sizes():
    assert valid_input_sizes(572) == [572]
    assert valid_input_sizes(570) == [556, 572]
    assert valid_input_sizes(250, padding="same") == [240, 256]
    assert valid_input_sizes(3, depth=4, padding="same") == [16]
    assert valid_input_sizes(100, depth=4, padding="valid") == [188]  # nothing smaller fits


def test_valid_sizes_are_spaced_by_the_pooling_factor():
    sizes = [s for s in range(1, 700) if valid_input_sizes(s, 4, "valid") == [s]]
    assert sizes[:3] == [188, 204, 220] and set(np.diff(sizes)) == {16}


def test_skip_crops_are_size_independent():
    assert _skip_crops(4) == {4: 4, 3: 16, 2: 40, 1: 88}


# ----------------------------------------------------------------- output shapes


def _fitting_size(depth, padding):
    near = 96 if padding == "same" else 200
    return valid_input_sizes(near, depth, padding)[-1]


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("upsampling", ["transpose", "bilinear"])
@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize("depth", [1, 2, 3, 4, 5])
def test_output_shapes(depth, padding, upsampling, channels):
    size = _fitting_size(depth, padding)
    expected = output_size(size, depth, padding)
    model = build_unet((size, size + 2**depth, channels), 3, depth=depth, filters=2,
                       padding=padding, upsampling=upsampling)
    out_w = output_size(size + 2**depth, depth, padding)
    assert model.output_shape == (None, expected, out_w, 3)
    y = model.predict(np.zeros((2, size, size + 2**depth, channels), "float32"), verbose=0)
    assert y.shape == (2, expected, out_w, 3)
    np.testing.assert_allclose(y.sum(-1), 1.0, atol=1e-5)  # softmax over 3 classes


def test_unknown_spatial_size_same_padding():
    model = build_unet((None, None, 3), 1, filters=4)
    assert model.output_shape == (None, None, None, 1)
    y = model.predict(np.random.default_rng(0).random((1, 64, 96, 3), "float32"), verbose=0)
    assert y.shape == (1, 64, 96, 1) and 0 <= y.min() and y.max() <= 1  # sigmoid


def test_unknown_spatial_size_valid_padding():
    model = build_unet((None, None, 1), 2, filters=4, padding="valid")
    y = model.predict(np.zeros((1, 204, 572, 1), "float32"), verbose=0)
    assert y.shape == (1, output_size(204), output_size(572), 2) == (1, 20, 388, 2)


def test_output_activations():
    def act(model):
        return model.layers[-1].get_config()["activation"]

    assert act(build_unet((32, 32, 1), 1, filters=2)) == "sigmoid"
    assert act(build_unet((32, 32, 1), 4, filters=2)) == "softmax"
    logits = build_unet((32, 32, 1), 4, filters=2, output_activation=None)
    assert act(logits) == "linear" and logits.layers[-1].name == "head_logits"


def test_batch_norm_uses_small_dataset_momentum():
    model = build_unet((64, 64, 1), 2, filters=4, batch_norm=True)
    bns = _layers_of(model, keras.layers.BatchNormalization)
    assert len(bns) == 18 and {bn.momentum for bn in bns} == {BATCH_NORM_MOMENTUM} == {0.9}
    assert not model.get_layer("enc1_conv1").use_bias  # BN's beta is the bias


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_output_is_float32_under_mixed_precision(policy):
    keras.mixed_precision.set_global_policy(policy)
    try:
        model = build_unet((32, 32, 1), 2, filters=4)
        assert model.get_layer("enc1_conv1").compute_dtype == policy.split("_")[1]
        y = model(np.zeros((1, 32, 32, 1), "float32"))
        assert keras.backend.standardize_dtype(y.dtype) == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


# ------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "args, kwargs, message",
    [
        (((64, 64, 1), 0), {}, "n_classes must be an integer >= 1; got 0"),
        (((64, 64, 1), 2.0), {}, "n_classes must be an integer >= 1; got 2.0"),
        (((64, 64, 1), 2), {"depth": 0}, "depth must be an integer >= 1; got 0"),
        (((64, 64, 1), 2), {"filters": 0}, "filters must be an integer >= 1; got 0"),
        (((570, 570, 1), 2), {"padding": "valid"},
         "input height: input size 570 does not fit a depth-4 U-Net with padding='valid'"),
        (((64, 60, 1), 2), {}, "input width: input size 60 does not fit"),
        (((572, 572), 2), {}, r"add a channel axis, e.g. \(572, 572, 1\)"),
        (((64, 64, None), 2), {}, "channel axis must be an integer >= 1; got None"),
        ((64, 2), {}, r"input_shape must be \(height, width, channels\); got 64"),
        (((64, 64, 1), 2), {"padding": "full"},
         "padding must be one of 'same', 'valid'; got 'full'"),
        (((64, 64, 1), 2), {"upsampling": "nearest"},
         "upsampling must be one of 'transpose', 'bilinear'; got 'nearest'"),
        (((64, 64, 1), 2), {"activation": "relux"},
         "activation must be a Keras activation; got 'relux'"),
        (((64, 64, 1), 2), {"output_activation": "soft"}, "output_activation must be 'auto'"),
        (((64, 64, 1), 1), {"output_activation": "softmax"}, "no independent channel"),
        (((64, 64, 1), 3), {"output_activation": "softmax", "multilabel": True},
         "no independent channel"),
        (((64, 64, 1), 2), {"multilabel": 1}, "multilabel must be True or False; got 1"),
        (((64, 64, 1), 2), {"activation": lambda x: x}, "a function with a plain name"),
        (((64, 64, 1), 2), {"dropout": 1.5}, "dropout must be a finite number >= 0 and < 1"),
    ],
)
def test_bad_arguments(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_unet(*args, **kwargs)


def test_size_error_names_the_nearest_sizes():
    with pytest.raises(ValueError, match="Nearest sizes that fit: 556, 572"):
        build_unet((570, 572, 1), 2, padding="valid")
    with pytest.raises(ValueError, match=r"multiple of 16 \(2\*\*depth\). Nearest sizes that fit: 240, 256"):
        build_unet((250, 256, 1), 2)
    with pytest.raises(ValueError, match="Nearest sizes that fit: 188"):
        output_size(100)


# ----------------------------------------------------------------------- training


def test_training_steps_lower_the_loss(toy_disks):
    keras.utils.set_random_seed(0)
    images, masks = toy_disks()
    model = build_unet((32, 32, 1), 1, depth=2, filters=8, dropout=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy")
    before = [w.copy() for w in model.get_weights()]
    first = float(model.train_on_batch(images, masks))
    for _ in range(30):
        last = float(model.train_on_batch(images, masks))
    assert np.isfinite(first) and np.isfinite(last)
    assert last < 0.5 * first, (first, last)
    assert all(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_valid_padding_trains_against_cropped_masks(toy_disks):
    images, masks = toy_disks(n=4, size=44)
    model = build_unet((44, 44, 1), 2, depth=2, filters=4, padding="valid")
    border = (44 - output_size(44, 2, "valid")) // 2  # 20 pixels consumed a side
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    history = model.fit(images, masks[:, border:-border, border:-border], epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2 and np.isfinite(history.history["loss"]).all()


# ----------------------------------------------------------------------- backends

_BACKEND_SCRIPT = textwrap.dedent(
    """
    import json, keras, numpy as np
    from keras_unet import build_unet
    paper = build_unet((572, 572, 1), 2, padding="valid")
    from keras_unet.training import compile_unet
    x = np.random.default_rng(0).random((2, 32, 32, 1), dtype="float32")
    # the package's multi-class loss and metrics (Keras 3.15's own
    # sparse_categorical_crossentropy fails its backward pass under torch)
    small = build_unet((32, 32, 1), 3, depth=2, filters=4, batch_norm=True)
    compile_unet(small)
    logs = small.train_on_batch(x, (x[..., 0] * 3).astype("int32"), return_dict=True)
    print(json.dumps({"backend": keras.backend.backend(), "params": paper.count_params(),
                      "output": list(paper.output_shape[1:]),
                      "logs": {k: float(v) for k, v in logs.items()}}))
    """
)


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_same_model_on_other_backends(backend):
    env = dict(os.environ, KERAS_BACKEND=backend)
    done = subprocess.run([sys.executable, "-c", _BACKEND_SCRIPT], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["backend"] == backend
    assert result["params"] == PAPER_PARAMS
    assert result["output"] == [388, 388, 2]
    logs = result["logs"]
    assert set(logs) == {"loss", "dice", "dice_class0", "dice_class1", "dice_class2",
                         "mean_iou", "pixel_error"}
    assert np.isfinite(list(logs.values())).all() and logs["loss"] > 0
    assert 0 <= logs["pixel_error"] <= 1 and 0 <= logs["dice"] <= 1


# ------------------------------------------------------------------------- saving


def test_save_and_load_in_safe_mode(tmp_path):
    model = build_unet((None, None, 1), 3, depth=3, filters=4, batch_norm=True,
                       upsampling="bilinear", padding="valid")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    images = np.random.default_rng(1).random((2, 92, 92, 1), dtype="float32")
    model.fit(images, np.zeros((2, 4, 4), "int32"), epochs=1, verbose=0)  # move BN stats
    path = tmp_path / "unet.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)  # no custom_objects
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    np.testing.assert_array_equal(loaded.predict(images, verbose=0), model.predict(images, verbose=0))


# ------------------------------------------------------------- recorded options

OPTIONS = dict(input_shape=(None, 64, 3), n_classes=3, depth=2, filters=4, padding="valid",
               batch_norm=True, dropout=0.25, upsampling="bilinear", activation="elu",
               output_activation="sigmoid", multilabel=True, pool_size=2, doubling="per_level",
               name="cells_unet")


def test_the_model_states_every_option_it_was_built_with():
    assert set(OPTIONS) | {"input_shape", "n_classes"} == set(
        build_unet.__code__.co_varnames[:build_unet.__code__.co_argcount
                                        + build_unet.__code__.co_kwonlyargcount])
    assert unet_config(build_unet(**OPTIONS)) == OPTIONS
    default = unet_config(build_unet((None, None, 1), 2))
    assert default == dict(input_shape=(None, None, 1), n_classes=2, depth=4, filters=64,
                           padding="same", batch_norm=False, dropout=0.5,
                           upsampling="transpose", activation="relu",
                           output_activation="softmax", multilabel=False, pool_size=2,
                           doubling="per_level", name="unet")
    assert unet_config(build_unet((32, 32, 1), 1, dropout=None, output_activation=None,
                                  filters=2))["output_activation"] is None
    rebuilt = build_unet(**unet_config(build_unet(**OPTIONS)))
    assert [layer.name for layer in rebuilt.layers] == [
        layer.name for layer in build_unet(**OPTIONS).layers]


def test_a_model_not_built_here_has_no_options_to_read():
    inputs = keras.Input((8, 8, 1))
    other = keras.Model(inputs, keras.layers.Conv2D(1, 3)(inputs), name="other")
    with pytest.raises(ValueError, match="model 'other' has no layer named unet_config-"):
        unet_config(other)


_LOAD_ELSEWHERE = textwrap.dedent(
    """
    import ast, json, sys
    import keras
    model = keras.models.load_model(sys.argv[1], safe_mode=True)
    assert "keras_unet" not in sys.modules
    (name,) = [layer.name for layer in model.layers if layer.name.startswith("unet_config-")]
    print(json.dumps(dict(item.partition(".")[::2] for item in name.split("-")[1:])))
    """
)


def test_the_options_survive_saving_and_load_without_the_package(tmp_path):
    path = tmp_path / "unet.keras"
    build_unet(**OPTIONS).save(path)
    assert unet_config(keras.models.load_model(path)) == OPTIONS
    done = subprocess.run([sys.executable, "-c", _LOAD_ELSEWHERE, str(path)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, KERAS_BACKEND="tensorflow"))
    assert done.returncode == 0, done.stderr[-3000:]
    texts = json.loads(done.stdout.strip().splitlines()[-1])
    assert texts == {"input_shape": "Nonex64x3", "n_classes": "3", "depth": "2", "filters": "4",
                     "padding": "valid", "batch_norm": "True", "dropout": "0.25",
                     "upsampling": "bilinear", "activation": "elu",
                     "output_activation": "sigmoid", "multilabel": "True"}


def test_multilabel_head_is_one_sigmoid_per_label():
    model = build_unet((32, 32, 1), 3, depth=2, filters=4, multilabel=True)
    assert model.layers[-1].name == "head_sigmoid" and model.output_shape == (None, 32, 32, 3)
    y = model.predict(np.random.default_rng(0).random((1, 32, 32, 1), "float32"), verbose=0)
    assert 0 <= y.min() and y.max() <= 1 and np.abs(y.sum(-1) - 1).max() > 1e-2  # not softmax
    assert unet_config(model)["multilabel"] is True


# ------------------------------------------------------------ zero padding reach


def _measured_reach(model, depth):
    """The farthest output row from an edge that changes when the image goes on beyond it."""
    align, reach = 2**depth, padding_reach(model)
    size, margin = (reach // align + 2) * align * 2, (reach // align + 1) * align
    big = np.random.default_rng(0).random((1, size + 2 * margin, 2 * align, 1), "float32")
    change = np.abs(np.asarray(model(big))[0, margin:-margin]
                    - np.asarray(model(big[:, margin:-margin]))[0]).max(axis=(1, 2))
    rows = np.flatnonzero(change > 1e-6 * change.max())
    return max(rows[rows < size // 2].max() + 1, size - rows[rows >= size // 2].min())


@pytest.mark.parametrize("upsampling", ["transpose", "bilinear"])
@pytest.mark.parametrize("depth", [1, 2, 3, 4])
def test_padding_reach_is_what_a_same_padding_model_shows(depth, upsampling):
    keras.utils.set_random_seed(depth)
    model = build_unet((None, None, 1), 2, depth=depth, filters=2, upsampling=upsampling,
                       activation="linear", output_activation=None, dropout=0)
    reach = padding_reach(model)
    assert reach == _measured_reach(model, depth)
    # the measured table it replaces: receptive_border + 2 with transposed up-convolutions
    # (depth >= 2), and receptive_border + 2**depth * (1 or 2) as the bound it kept
    if upsampling == "transpose" and depth > 1:
        assert reach == receptive_border(depth) + 2
    assert reach <= receptive_border(depth) + 2**depth * (2 if upsampling == "bilinear" else 1)
    valid = padding_reach(build_unet((None, None, 1), 2, depth=depth, filters=2,
                                     padding="valid", upsampling=upsampling))
    # valid padding: none, but for the 2x2 same convolution and the edges of the bilinear
    # up-sampling (it clamps there)
    assert (valid == 0) == (upsampling == "transpose")


def test_padding_reach_names_a_layer_it_cannot_follow():
    inputs = keras.Input((None, None, 1))
    outputs = keras.layers.ZeroPadding2D(1, name="pad")(inputs)
    with pytest.raises(ValueError, match="through layer 'pad' \\(ZeroPadding2D\\)"):
        padding_reach(keras.Model(inputs, outputs))


# ------------------------------------------------------------------ volumes (3D)

from keras_unet.model import CICEK_2016, smallest_input_size  # noqa: E402

ANISOTROPIC = [(1, 2, 2), (2, 2, 2)]  # thick slices: no pooling along axis 0 at level 1


def test_cicek_2016_shapes_and_parameter_counts():
    model = build_unet((116, 132, 132, 3), 3, **CICEK_2016, padding="valid")
    assert model.output_shape == (None, 28, 44, 44, 3)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert (model.count_params(), trainable) == (19_077_859, 19_073_187)
    # the paper's description without batch normalisation: its weights and biases
    plain = build_unet((116, 132, 132, 3), 3, **dict(CICEK_2016, batch_norm=False),
                       padding="valid")
    assert plain.count_params() == 19_070_851
    convs = [layer for layer in model.layers if type(layer) is keras.layers.Conv3D][:-1]
    bn_channels = sum(layer.filters for layer in convs)  # 14 3x3x3 convolutions
    assert (len(convs), bn_channels) == (14, 2336)
    assert model.count_params() == 19_070_851 - bn_channels + 4 * bn_channels
    upconvs = _layers_of(model, keras.layers.Conv3DTranspose)
    assert 19_070_851 - sum(layer.filters for layer in upconvs) == 19_069_955  # the paper's
    # Figure 1: 32, 64 | 64, 128 | 128, 256 | 256, 512 -> up 512 | 256, 256 -> up 256 | ...
    channels = {layer.name: layer.output.shape[-1] for layer in model.layers}
    assert [channels[f"enc{k}_conv{i}"] for k in (1, 2, 3) for i in (1, 2)] == [
        32, 64, 64, 128, 128, 256]
    assert [channels[f"bottleneck_conv{i}"] for i in (1, 2)] == [256, 512]
    assert [channels[f"dec{k}_{n}"] for k in (3, 2, 1) for n in ("upconv", "conv1", "conv2")] \
        == [512, 256, 256, 256, 128, 128, 128, 64, 64]
    # sizes: 116 -> 112 | 56 -> 52 | 26 -> 22 | 11 -> 7 -> up 14, ... 28 (132: ... 44)
    assert model.get_layer("dec3_concat").output.shape[1:] == (14, 18, 18, 768)
    assert model.get_layer("dec1_crop").output.shape[1:4] == (32, 48, 48)


def test_3d_same_and_valid_models_predict_their_shapes():
    same = build_unet((8, 16, 16, 2), 3, depth=2, filters=2)
    y = same.predict(np.zeros((1, 8, 16, 16, 2), "float32"), verbose=0)
    assert same.output_shape == (None, 8, 16, 16, 3) and y.shape == (1, 8, 16, 16, 3)
    np.testing.assert_allclose(y.sum(-1), 1.0, atol=1e-5)
    valid = build_unet((None, None, None, 1), 1, depth=1, filters=2, padding="valid")
    y = valid.predict(np.zeros((1, 18, 20, 22, 1), "float32"), verbose=0)
    assert y.shape == (1, *output_size((18, 20, 22), 1, "valid"), 1) == (1, 2, 4, 6, 1)
    assert type(valid.get_layer("enc1_conv1")) is keras.layers.Conv3D
    assert valid.get_layer("enc1_conv1").kernel_size == (3, 3, 3)


def test_anisotropic_pooling_sizes_crops_and_kernels():
    sizes = dict(depth=2, padding="valid", pool_size=ANISOTROPIC)
    assert smallest_input_size(**sizes) == (26, 44, 44)
    assert receptive_border(2, pool_size=ANISOTROPIC) == (12, 20, 20)
    # axis 0: 26 -> 22 -(1)-> 22 -> 18 -(2)-> 9 -> 5 -> 10 -> 6 -> 6 -> 2
    assert output_size((26, 44, 44), **sizes) == (2, 4, 4)
    assert output_size((30, 60, 92), **sizes) == (6, 20, 52)
    assert valid_input_sizes((25, 44, 45), **sizes) == ([26], [44], [44, 48])
    assert _skip_crops(2, ANISOTROPIC) == {1: (8, 16, 16), 2: 4}
    model = build_unet((26, 44, 44, 1), 2, filters=2, **sizes)
    assert model.output_shape == (None, 2, 4, 4, 2)
    assert model.predict(np.zeros((1, 26, 44, 44, 1), "float32"), verbose=0).shape == (1, 2, 4, 4, 2)
    layer = model.get_layer
    assert (layer("enc1_pool").pool_size, layer("enc2_pool").pool_size) == ((1, 2, 2), (2, 2, 2))
    assert [(layer(f"dec{k}_upconv").kernel_size, layer(f"dec{k}_upconv").strides)
            for k in (2, 1)] == [((2, 2, 2), (2, 2, 2)), ((1, 2, 2), (1, 2, 2))]
    assert layer("dec1_crop").cropping == ((8, 8), (16, 16), (16, 16))
    # same padding: axis 0 needs a multiple of 1 x 2 = 2 only
    same = build_unet((6, 32, 32, 1), 1, depth=2, filters=2, pool_size=ANISOTROPIC)
    assert same.output_shape == (None, 6, 32, 32, 1)
    assert receptive_border(3) == 44 and smallest_input_size(3, pool_size=(2, 2, 2)) == 92


def test_2d_pool_sizes_and_doubling_before_pool():
    model = build_unet((27, 36, 1), 2, depth=2, filters=2, pool_size=[(3, 2), (1, 2)])
    assert model.output_shape == (None, 27, 36, 2)
    assert model.get_layer("dec2_upconv").kernel_size == (1, 2)
    doubled = build_unet((32, 32, 1), 2, depth=2, filters=4, doubling="before_pool")
    channels = [layer.output.shape[-1] for layer in doubled.layers
                if type(layer) in (keras.layers.Conv2D, keras.layers.Conv2DTranspose)]
    # enc1 4, 8 | enc2 8, 16 | bottleneck 16, 32 | up 32 | 16, 16 | up 16 | 8, 8 | head 2
    assert channels == [4, 8, 8, 16, 16, 32, 32, 16, 16, 16, 8, 8, 2]
    # the 2015 default is unchanged: both convolutions of a level alike, up-convolutions halve
    assert [layer.output.shape[-1] for layer in build_unet((32, 32, 1), 2, depth=2, filters=4)
            .layers if type(layer) in (keras.layers.Conv2D, keras.layers.Conv2DTranspose)] == [
        4, 4, 8, 8, 16, 16, 8, 8, 8, 4, 4, 4, 2]


@pytest.mark.parametrize(
    "args, kwargs, message",
    [
        (((16, 32, 32, 1), 2), {"depth": 2, "pool_size": (2, 2)},
         r"pool_size must be an int >= 1, a tuple of 3 \(one per axis\) or a list of 2 "
         r"\(depth\) of them; got \(2, 2\)"),
        (((16, 32, 32, 1), 2), {"depth": 2, "pool_size": [(2, 2, 2)]},
         r"a list of 2 \(depth\) of them; got \[\(2, 2, 2\)\]"),
        (((16, 32, 32, 1), 2), {"pool_size": 2.0}, "pool_size must be an int >= 1, .*; got 2.0"),
        (((16, 32, 32, 1), 2), {"pool_size": (1, 2.5, 2)}, r"got \(1, 2.5, 2\)"),
        (((16, 32, 32, 1), 2), {"pool_size": 0}, "pool_size must be an int >= 1, .*; got 0"),
        (((16, 30, 30, 1), 2), {"depth": 2, "pool_size": (1, 3, 3)},
         r"input height 30 does not fit a depth-2 U-Net with padding='same' and pool_size=\(1, "
         r"3, 3\): it must be a multiple of 9 \(3 x 3\). Nearest sizes that fit: 27, 36"),
        (((64, 60, 1), 2), {"depth": 2, "pool_size": (1, 3)},
         "input width: input size 60 does not fit .* multiple of 9 .* Nearest sizes that fit: 54, 63"),
        (((6, 32, 32, 1), 2), {"depth": 2},
         r"input depth \(axis 0\) 6 does not fit a depth-2 U-Net with padding='same': it must be "
         r"a multiple of 4 \(2\*\*depth\). Nearest sizes that fit: 4, 8"),
        (((1, 30, 32, 64), 2), {"depth": 2},
         r"input depth \(axis 0\) 1 does not fit .* did you mean \(30, 32, 64, 1\)\?"),
        (((1, 16, 32, 32, 1), 2), {},
         r"got \(1, 16, 32, 32, 1\) \(or \(depth, height, width, channels\) in 3D\)"),
        (((16, 32, 32, 1), 2), {"upsampling": "bilinear"},
         "upsampling must be 'transpose' in 3D .*UpSampling3D is nearest only.*; got 'bilinear'"),
        (((16, 32, 32, 1), 2), {"doubling": "twice"},
         "doubling must be one of 'per_level', 'before_pool'; got 'twice'"),
    ],
)
def test_bad_3d_arguments(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_unet(*args, **kwargs)


def test_size_helpers_name_the_axis():
    with pytest.raises(ValueError, match=r"input depth \(axis 0\) 45 does not fit a depth-2 U-Net "
                       r"with padding='valid': it must be even before each 2x2 max-pooling, after "
                       r"the 3x3 valid convolutions. Nearest sizes that fit: 44, 48"):
        output_size((45, 92, 92), 2, "valid")
    with pytest.raises(ValueError, match=r"input depth \(axis 0\) 27 .* divisible by each level's "
                       r"pool size \(1, 2\), .* Nearest sizes that fit: 26, 28"):
        output_size((27, 44, 44), 2, "valid", pool_size=ANISOTROPIC)
    with pytest.raises(ValueError, match=r"input width 93 does not fit"):
        output_size((44, 93), 2, "valid")
    with pytest.raises(ValueError, match=r"pool_size \(1, 2\) differs between axes: give the "
                       r"input size per axis \(a tuple of 2 sizes\)"):
        output_size(572, pool_size=(1, 2))
    assert output_size(572, pool_size=[(2, 2)] * 4) == 388  # the same on every axis: fine
    with pytest.raises(ValueError, match="pool_size must be an int >= 1"):
        receptive_border(2, pool_size=[(1, 2, 2)])


OPTIONS_3D = dict(input_shape=(None, 32, 32, 1), n_classes=2, depth=2, filters=2,
                  padding="same", batch_norm=True, dropout=0.0, upsampling="transpose",
                  activation="relu", output_activation="softmax", multilabel=False,
                  pool_size=ANISOTROPIC, doubling="before_pool", name="volumes")


def test_3d_options_round_trip():
    model = build_unet(**OPTIONS_3D)
    assert unet_config(model) == OPTIONS_3D
    rebuilt = build_unet(**unet_config(model))
    assert [layer.name for layer in rebuilt.layers] == [layer.name for layer in model.layers]
    assert rebuilt.count_params() == model.count_params()
    assert unet_config(build_unet((8, 16, 16, 1), 1, depth=1, filters=2, pool_size=(1, 2, 2)))[
        "pool_size"] == [(1, 2, 2)]
    from_json = build_unet(**dict(OPTIONS_3D, pool_size=[[1, 2, 2], [2, 2, 2]]))  # lists: JSON
    assert unet_config(from_json) == OPTIONS_3D
    assert unet_config(build_unet((27, 27, 1), 1, depth=1, filters=2, pool_size=3))[
        "pool_size"] == 3
    # the defaults are not written: a 2D model's recorded name is as before, and models saved
    # before pool_size and doubling existed read back with the defaults
    name = build_unet((None, None, 1), 2).layers[1].name
    assert "pool_size" not in name and "doubling" not in name
    inputs = keras.Input((None, None, 1))
    old = keras.Model(inputs, keras.layers.Identity(name=name)(inputs))
    assert unet_config(old)["pool_size"] == 2 and unet_config(old)["doubling"] == "per_level"


def test_3d_model_saves_and_loads_in_safe_mode(tmp_path):
    model = build_unet((None, 18, 18, 1), 2, depth=1, filters=2, batch_norm=True,
                       pool_size=[(1, 2, 2)], padding="valid", doubling="before_pool")
    volumes = np.random.default_rng(2).random((1, 14, 18, 18, 1), dtype="float32")
    path = tmp_path / "volumes.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)  # no custom_objects
    assert unet_config(loaded) == dict(unet_config(model))
    assert loaded.output_shape == (None, None, 2, 2, 2)
    assert loaded.predict(volumes, verbose=0).shape == (1, 2, 2, 2, 2)
    np.testing.assert_array_equal(loaded.predict(volumes, verbose=0),
                                  model.predict(volumes, verbose=0))


def test_padding_reach_of_3d_models():
    keras.utils.set_random_seed(3)
    model = build_unet((None, None, None, 1), 2, depth=1, filters=2, activation="linear",
                       output_activation=None, dropout=0)
    reach = padding_reach(model)
    flat = build_unet((None, None, 1), 2, depth=1, filters=2, dropout=0)
    assert reach == padding_reach(flat)
    # measured along axis 0: the output rows that change when the volume goes on beyond them
    size, margin = 4 * (reach // 2 + 2), 2 * (reach // 2 + 1)
    big = np.random.default_rng(0).random((1, size + 2 * margin, 4, 4, 1), "float32")
    change = np.abs(np.asarray(model(big))[0, margin:-margin]
                    - np.asarray(model(big[:, margin:-margin]))[0]).max(axis=(1, 2, 3))
    rows = np.flatnonzero(change > 1e-6 * change.max())
    assert max(rows[rows < size // 2].max() + 1, size - rows[rows >= size // 2].min()) == reach
    anisotropic = build_unet((None, None, None, 1), 2, depth=2, filters=2, pool_size=ANISOTROPIC)
    assert padding_reach(anisotropic) == receptive_border(2) + 2 == 22
    # axis 0, pooled only at the second level, is reached by fewer voxels
    assert padding_reach(anisotropic, per_axis=True) == (12, 22, 22)
    assert padding_reach(build_unet((None, None, None, 1), 2, depth=2, filters=2,
                                    padding="valid", pool_size=ANISOTROPIC)) == 0
