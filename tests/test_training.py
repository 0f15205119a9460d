"""keras_unet/training.py: compiling for the data, mixed precision, several devices,
saving a model compiled with every loss and metric, the weight map on real data, and the
train() recipe called from Python."""

import json
import os
import re
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from PIL import Image

from keras_unet import build_unet, output_size
from keras_unet.losses import DiceCELoss, FocalLoss
from keras_unet.training import LOSSES, available_devices, compile_unet, set_mixed_precision
from keras_unet.weights import border_weight_map


@pytest.fixture
def float32_afterwards():
    yield
    keras.mixed_precision.set_global_policy("float32")


def test_compile_binary_model_fits(toy_disks):
    keras.utils.set_random_seed(0)
    images, masks = toy_disks()
    model = compile_unet(build_unet((32, 32, 1), 1, depth=2, filters=8, dropout=0),
                         learning_rate=1e-2)
    assert isinstance(model.loss, DiceCELoss) and not model.loss.from_logits
    history = model.fit(images, masks, epochs=15, verbose=0).history
    assert set(history) == {"loss", "dice", "iou", "pixel_error"}
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    assert history["dice"][-1] > 0.8  # the disks are easy


def test_compile_multiclass_logits_model():
    rng = np.random.default_rng(0)
    images = rng.random((2, 32, 32, 1)).astype("float32")
    labels = (images[..., 0] * 3).astype("int32")
    model = compile_unet(build_unet((32, 32, 1), 3, depth=2, filters=4, output_activation=None),
                         loss="focal")
    assert isinstance(model.loss, FocalLoss) and model.loss.from_logits
    history = model.fit(images, labels, epochs=1, verbose=0).history
    assert set(history) == {"loss", "dice", "dice_class0", "dice_class1", "dice_class2",
                            "mean_iou", "pixel_error"}


def test_compile_unknown_loss():
    with pytest.raises(ValueError, match="loss must be one of 'dice_ce', 'dice', .*; got 'dise'"):
        compile_unet(build_unet((32, 32, 1), 1, depth=2, filters=4), loss="dise")


@pytest.mark.parametrize("rate", [float("nan"), float("inf"), 0, -1e-3, "0.001", True])
def test_compile_refuses_a_learning_rate_that_cannot_train(rate):
    with pytest.raises(ValueError, match="^" + re.escape(
            f"learning_rate must be a finite number > 0; got {rate!r}") + "$"):
        compile_unet(build_unet((32, 32, 1), 1, depth=2, filters=4), learning_rate=rate)
    model = compile_unet(build_unet((32, 32, 1), 1, depth=2, filters=4),
                         learning_rate=np.float32(0.01))
    assert float(model.optimizer.learning_rate) == pytest.approx(0.01)


def test_devices_and_mixed_precision_policy(float32_afterwards):
    assert available_devices()[0] == "CPU:0"
    assert set_mixed_precision() == "mixed_bfloat16"  # no GPU on this machine
    assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
    assert set_mixed_precision(False) == "float32"


def test_mixed_precision_fit_loss_falls(toy_disks, float32_afterwards):
    keras.utils.set_random_seed(0)
    images, masks = toy_disks()
    set_mixed_precision()
    model = compile_unet(build_unet((32, 32, 1), 1, depth=2, filters=8, dropout=0),
                         learning_rate=1e-2)
    assert model.get_layer("enc1_conv1").compute_dtype == "bfloat16"
    assert keras.backend.standardize_dtype(model(images[:1]).dtype) == "float32"
    losses = model.fit(images, masks, epochs=15, verbose=0).history["loss"]
    assert np.isfinite(losses).all() and losses[-1] < 0.5 * losses[0]


def test_float16_gets_loss_scaling(toy_disks, float32_afterwards):
    images, masks = toy_disks(n=2)
    keras.mixed_precision.set_global_policy("mixed_float16")
    model = compile_unet(build_unet((32, 32, 1), 1, depth=2, filters=4))
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    losses = model.fit(images, masks, epochs=2, verbose=0).history["loss"]
    assert np.isfinite(losses).all()


@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_save_and_load_with_every_loss_and_metric(loss, tmp_path):
    rng = np.random.default_rng(0)
    images = rng.random((2, 32, 32, 1)).astype("float32")
    labels = (images[..., 0] * 3).astype("int32")
    model = compile_unet(build_unet((32, 32, 1), 3, depth=2, filters=4), loss=loss)
    model.fit(images, labels, epochs=1, verbose=0)
    model.save(tmp_path / "unet.keras")
    loaded = keras.models.load_model(tmp_path / "unet.keras", safe_mode=True)
    assert type(loaded.loss) is type(model.loss)
    assert loaded.loss.get_config() == model.loss.get_config()
    np.testing.assert_array_equal(loaded.predict(images, verbose=0), model.predict(images, verbose=0))
    assert loaded.evaluate(images, labels, verbose=0, return_dict=True) == pytest.approx(
        model.evaluate(images, labels, verbose=0, return_dict=True))


_MIRRORED = textwrap.dedent(
    """
    import json, numpy as np, tensorflow as tf, keras
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from keras_unet import build_unet
    from keras_unet.training import compile_unet

    rng = np.random.default_rng(0)
    x = rng.random((8, 32, 32, 1)).astype("float32")
    y = (x > 0.5).astype("float32")
    w = rng.uniform(1, 5, (8, 32, 32)).astype("float32")

    def one_step(strategy):
        with strategy.scope():
            keras.utils.set_random_seed(0)
            model = build_unet((32, 32, 1), 1, depth=2, filters=4, dropout=0)
            compile_unet(model, optimizer="sgd", learning_rate=0.1)
        data = tf.data.Dataset.from_tensor_slices((x, y, w)).batch(8)
        loss = model.fit(data, epochs=1, verbose=0).history["loss"][0]
        return model.get_weights(), loss

    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    weights2, loss2 = one_step(mirrored)
    weights1, loss1 = one_step(tf.distribute.get_strategy())
    print(json.dumps({"replicas": mirrored.num_replicas_in_sync, "loss1": loss1, "loss2": loss2,
                      "max_weight_difference": max(float(np.abs(a - b).max())
                                                   for a, b in zip(weights1, weights2))}))
    """
)


def test_mirrored_strategy_on_two_cpus_matches_one_device():
    env = dict(os.environ, KERAS_BACKEND="tensorflow")
    done = subprocess.run([sys.executable, "-c", _MIRRORED], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2
    assert result["loss2"] == pytest.approx(result["loss1"], rel=1e-5)
    assert result["max_weight_difference"] < 1e-5


def test_weight_map_training_on_real_isbi_tiles(shared_data):
    """The paper's recipe in small: valid padding, masks and border weight maps cropped
    to the output, the weights passed as sample_weight."""
    keras.utils.set_random_seed(0)
    size, depth = 188, 3
    out = output_size(size, depth, "valid")
    border = (size - out) // 2
    images, masks, weights = [], [], []
    for name in ("00.png", "01.png"):
        image = np.asarray(Image.open(shared_data / "isbi2012_em" / "images" / name), "float32")
        cells = np.asarray(Image.open(shared_data / "isbi2012_em" / "masks" / name)) > 0
        tile = (slice(100, 100 + size), slice(100, 100 + size))
        inner = (slice(100 + border, 100 + border + out),) * 2
        images.append(image[tile][..., None] / 255)
        masks.append(cells[inner][..., None].astype("float32"))
        weights.append(border_weight_map(cells)[inner])
    images, masks, weights = np.stack(images), np.stack(masks), np.stack(weights)
    assert weights.max() > 10  # the membranes between cells weigh ~w0 + w_c
    model = compile_unet(build_unet((size, size, 1), 1, depth=depth, filters=8,
                                    padding="valid", dropout=0), learning_rate=3e-3)
    assert model.output_shape == (None, out, out, 1)
    history = model.fit(images, masks, sample_weight=weights, epochs=8, verbose=0).history
    assert np.isfinite(history["loss"]).all()
    assert history["loss"][-1] < history["loss"][0]


def test_train_with_the_command_defaults(tmp_path, capsys):
    """The recipe called from Python as a notebook does: defaults only (fast mode: 2 epochs
    of 3 steps; the 256 tile shrinks to the small images)."""
    import csv

    from keras_unet.datasets import synthetic_cells
    from keras_unet.training import train

    images, masks, _ = synthetic_cells(5, size=64, seed=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KERAS_UNET_FAST", "1")
        patch.chdir(tmp_path)
        history = train(images, masks, verbose=0)
    out = capsys.readouterr().out
    assert "tile 256 is larger than the smallest image: using tile 64" in out
    assert "training on 4 images, validating on 1; tiles 64x64, 1 output channel(s)" in out
    assert history.epoch == [0, 1] and "val_loss" in history.history
    model = keras.models.load_model(tmp_path / "unet.keras", compile=False)
    assert model.output_shape == (None, None, None, 1)
    assert sorted(p.name for p in (tmp_path / "unet_training").iterdir()) == ["history.csv"]
    with open(tmp_path / "unet_training" / "history.csv") as file:
        assert [row["epoch"] for row in csv.DictReader(file)] == ["0", "1"]


def test_train_reads_mask_modes_and_classes():
    from keras_unet.training import _classes

    from keras_unet.images import MaskValuesError, as_mask

    full = np.array([[0, 255]], np.int32)  # refused as every stage refuses it
    with pytest.raises(MaskValuesError) as expected:
        as_mask(full, "masks[0]", "multiclass")
    with pytest.raises(MaskValuesError, match="^" + re.escape(str(expected.value)) + "$"):
        _classes([full], "multiclass", None, None)
    masks, n_classes = _classes([np.array([[0.0, 1.0]], np.float32)], "multiclass", None, None)
    assert n_classes == 2 and masks[0].dtype == np.int32
    assert _classes([np.array([[0, 1, 2]], np.int32)], None, None, None)[1] == 3
    masks, n_classes = _classes([np.array([[0, 1]], np.int32)], "binary", None, None)
    assert n_classes == 1 and masks[0].dtype == np.float32
    with pytest.raises(ValueError, match=r"^n_classes=3, but the masks are binary"):
        _classes([np.array([[0.0, 1.0]], np.float32)], None, 3, None)
    with pytest.raises(ValueError, match=r"^n_classes=1, but the masks hold class indices"):
        _classes([np.array([[0, 2]], np.int32)], None, 1, None)


def test_train_refuses_a_tile_that_does_not_fit(tmp_path):
    from keras_unet.training import train

    with pytest.raises(ValueError, match=re.escape(
            "tile=30 does not fit a depth-2 U-Net with padding='same' (a multiple of 2**depth "
            "= 4); nearest sizes that fit: 28, 32")):
        train(np.zeros((2, 32, 32, 1), np.float32), np.zeros((2, 32, 32, 1), np.float32),
              tmp_path / "m.keras", tile=30, depth=2)


def test_train_on_volumes_builds_a_3d_unet(tmp_path, capsys):
    """Volumes (D, H, W, C) train a 3D U-Net: the default tile shrinks to them axis by axis,
    a third of the patches are centred on the foreground, anisotropic pooling is recorded."""
    from keras_unet.datasets import load_synthetic3d
    from keras_unet.model import unet_config
    from keras_unet.training import DEFAULT_TILE_3D, train

    train_split, _ = load_synthetic3d(n=3, n_test=1, shape=(12, 40, 40), seed=2)
    assert DEFAULT_TILE_3D == (32, 128, 128)
    output = tmp_path / "vol.keras"
    history = train(list(train_split.images), list(train_split.masks), output, depth=2,
                    filters=4, pool_size=[(1, 2, 2), (2, 2, 2)], batch_size=2, epochs=1,
                    steps_per_epoch=2, verbose=0)
    out = capsys.readouterr().out
    # axis 0: 12 slices take 12 (a multiple of 2 = 1 x 2); 40 px: 40 (a multiple of 4)
    assert "tile 32x128x128 is larger than the smallest image: using tile 12x40x40" in out
    assert "training on 2 images, validating on 1; tiles 12x40x40 (33% centred on the " \
        "foreground), 1 output channel(s)" in out
    assert history.epoch == [0]
    model = keras.models.load_model(output, compile=False)
    assert model.input_shape == (None, None, None, None, 1)
    assert unet_config(model)["pool_size"] == [(1, 2, 2), (2, 2, 2)]


def test_train_refuses_a_volume_tile_that_does_not_fit(tmp_path):
    from keras_unet.training import train

    volumes = np.zeros((2, 8, 32, 32, 1), np.float32)
    with pytest.raises(ValueError, match=re.escape(
            "tile=(6, 32, 32) does not fit: input depth (axis 0) 6 does not fit")):
        train(volumes, volumes, tmp_path / "m.keras", tile=(6, 32, 32), depth=2)
    with pytest.raises(ValueError, match=re.escape("tile must be a side or 3 sides")):
        train(volumes, volumes, tmp_path / "m.keras", tile=(8, 32), spatial_dims=3, depth=2)
