"""keras_unet/training.py: compiling for the data, mixed precision, several devices,
saving a model compiled with every loss and metric, the weight map on real data, and the
train() recipe called from Python."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from PIL import Image

from keras_unet import build_unet, output_size
from keras_unet.losses import DiceCELoss, FocalLoss
from keras_unet.training import (LOSSES, available_devices, compile_unet, set_mixed_precision,
                                 train)
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


def test_a_compiled_model_loads_where_only_build_unet_was_imported(tmp_path):
    model = compile_unet(build_unet((32, 32, 1), 1, depth=1, filters=2), loss="dice_ce")
    model.save(tmp_path / "unet.keras")
    script = ("import sys, keras\nfrom keras_unet import build_unet\n"
              "print(type(keras.models.load_model(sys.argv[1]).loss).__name__)")
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "unet.keras")],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["DiceCELoss"]


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
    import json, sys, numpy as np, tensorflow as tf, keras
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
    from keras_unet.training import train
    train(x[..., 0], y[..., 0], sys.argv[1], depth=2, filters=4, epochs=1, steps_per_epoch=2,
          distribution=mirrored, verbose=0)
    try:
        train(x[..., 0], y[..., 0], sys.argv[1], batch_size=3, distribution=mirrored)
    except ValueError as error:
        print(json.dumps({"refused": str(error)}))
    """
)


def test_mirrored_strategy_on_two_cpus_matches_one_device(tmp_path):
    env = dict(os.environ, KERAS_BACKEND="tensorflow")
    done = subprocess.run([sys.executable, "-c", _MIRRORED, str(tmp_path / "unet.keras")],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result, refused = [json.loads(line) for line in done.stdout.splitlines() if line[:1] == "{"]
    assert result["replicas"] == 2
    assert result["loss2"] == pytest.approx(result["loss1"], rel=1e-5)
    assert result["max_weight_difference"] < 1e-5
    # train() on the same two replicas: the global batch of 4 is split in two
    assert ("data parallel on 2 devices, 1 process(es): global batch 4 (2 per device), "
            "learning rate 0.001") in done.stdout
    assert (tmp_path / "unet.keras").exists()
    assert refused["refused"] == ("batch_size=3 cannot be split evenly over 2 devices: give a "
                                  "multiple of 2")


def test_train_refuses_an_unknown_distribution(tmp_path):
    with pytest.raises(ValueError, match=re.escape(
            'distribution must be "auto", None, a keras.distribution.Distribution or a '
            "tf.distribute.Strategy; got 'all'")):
        train(np.zeros((2, 32, 32)), np.zeros((2, 32, 32)), tmp_path / "unet.keras",
              distribution="all")


# ----------------------------------------------- data parallel on JAX (keras.distribution)

# train(distribution="auto") on synthetic cells; the final weights go to <output>.<process>.npz.
# "kill": process 1 dies by SIGKILL in the middle of the second epoch (after 4 of 6 steps).
_WORKER = textwrap.dedent(
    """
    import os, signal, sys
    import keras, numpy as np
    from keras_unet.datasets import synthetic_cells
    from keras_unet.training import train

    output, kill, process = sys.argv[1], sys.argv[2] == "kill", os.environ.get(
        "KERAS_DISTRIBUTION_PROCESS_ID", "0")
    if kill and process == "1":
        steps, count = keras.callbacks.TerminateOnNaN.on_batch_end, []
        def on_batch_end(self, batch, logs=None):
            steps(self, batch, logs)
            count.append(batch)
            if len(count) == 4:
                os.kill(os.getpid(), signal.SIGKILL)
        keras.callbacks.TerminateOnNaN.on_batch_end = on_batch_end
    images, masks, _ = synthetic_cells(8, size=64)
    history = train(images, masks, output, tile=32, depth=2, filters=4, batch_size=4, epochs=2,
                    steps_per_epoch=3, validation_split=0.25, distribution="auto", verbose=0)
    np.savez(f"{output}.{process}.npz", *history.model.get_weights())
    """
)


def _free_port():
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        return free.getsockname()[1]


def _workers(output, processes=1, devices=1, kill=False):
    """Start ``processes`` JAX workers of ``devices`` CPU devices each, joined on 127.0.0.1."""
    env = dict(os.environ, KERAS_BACKEND="jax",
               XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
    if processes > 1:
        env.update(KERAS_DISTRIBUTION_JOB_ADDRESSES=f"127.0.0.1:{_free_port()}",
                   KERAS_DISTRIBUTION_NUM_PROCESSES=str(processes))
    return [subprocess.Popen([sys.executable, "-c", _WORKER, str(output), "kill" * kill],
                             env=dict(env, KERAS_DISTRIBUTION_PROCESS_ID=str(p)), text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            for p in range(processes)]


def _finish(workers, timeout=300):
    """The workers' output, once each has ended (killed after ``timeout`` s: a failure)."""
    outputs = []
    for worker in workers:
        try:
            outputs.append(worker.communicate(timeout=timeout)[0])
        except subprocess.TimeoutExpired:
            for other in workers:
                other.kill()
            pytest.fail(f"a worker ran past {timeout} s: {worker.communicate()[0][-3000:]}")
        assert worker.returncode == 0, outputs[-1][-3000:]
    return outputs


def _weights(path):
    with np.load(path) as saved:
        return [saved[f"arr_{i}"] for i in range(len(saved.files))]


@pytest.fixture(scope="module")
def two_devices(tmp_path_factory):
    """The final weights of one process on two emulated devices, and its output."""
    output = tmp_path_factory.mktemp("two_devices") / "unet.keras"
    (log,) = _finish(_workers(output, devices=2))
    return _weights(f"{output}.0.npz"), log


@pytest.mark.backend("jax")
def test_two_emulated_devices_train_the_weights_of_one(tmp_path, two_devices):
    """The same global batch of 4 on one device and split over two, through make_dataset's
    random tiles and augmentation, dropout and batch norm: the same weights after 6 steps."""
    weights2, log = two_devices
    assert ("data parallel on 2 devices, 1 process(es): global batch 4 (2 per device), "
            "learning rate 0.001") in log
    _finish(_workers(tmp_path / "unet.keras"))
    weights1 = _weights(tmp_path / "unet.keras.0.npz")
    difference = max(float(np.abs(a - b).max()) for a, b in zip(weights1, weights2))
    assert difference < 1e-5  # float sums in another order (measured: 7e-7)
    assert max(float(np.abs(a).max()) for a in weights1) > 0.1  # trained, not all zero


@pytest.mark.backend("jax")
def test_two_processes_train_the_weights_of_two_devices(tmp_path, two_devices):
    """Two processes on 127.0.0.1 joined by keras.distribution.initialize, one device each,
    each drawing its half of every batch: the weights of one process on two devices."""
    output = tmp_path / "unet.keras"
    logs = _finish(_workers(output, processes=2))
    assert "data parallel on 2 devices, 2 process(es): global batch 4" in logs[0]
    assert f"process 1 of 2 done: process 0 saves the model to {output}" in logs[1]
    weights = [_weights(f"{output}.{p}.npz") for p in (0, 1)]
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)  # one model, replicated
    for a, b in zip(weights[0], two_devices[0]):
        np.testing.assert_allclose(a, b, atol=1e-6)
    assert keras.models.load_model(output, compile=False).count_params() == 7_637
    assert sorted(p.name for p in tmp_path.iterdir()) == [  # process 1 wrote nothing there
        "unet.keras", "unet.keras.0.npz", "unet.keras.1.npz", "unet_training"]


@pytest.mark.backend("jax")
def test_a_killed_worker_resumes_from_the_backup(tmp_path):
    """Process 1 is killed in the second epoch; the launcher stops process 0 (which would
    stop by itself once process 1 misses its heartbeats) and starts both again: they go on
    from the first epoch's backup, and the log holds each epoch once."""
    output, log = tmp_path / "unet.keras", tmp_path / "unet_training" / "history.csv"
    first, second = _workers(output, processes=2, kill=True)
    second.wait(timeout=300)
    assert second.returncode == -signal.SIGKILL
    first.kill()
    first.wait()
    assert [row.split(",")[0] for row in log.read_text().splitlines()] == ["epoch", "0"]
    _finish(_workers(output, processes=2))
    assert [row.split(",")[0] for row in log.read_text().splitlines()] == ["epoch", "0", "1"]
    assert output.exists() and not (tmp_path / "unet_training" / "backup").exists()


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
    from keras_unet.training import DEFAULT_TILE_3D

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
    volumes = np.zeros((2, 8, 32, 32, 1), np.float32)
    with pytest.raises(ValueError, match=re.escape(
            "tile=(6, 32, 32) does not fit: input depth (axis 0) 6 does not fit")):
        train(volumes, volumes, tmp_path / "m.keras", tile=(6, 32, 32), depth=2)
    with pytest.raises(ValueError, match=re.escape("tile must be a side or 3 sides")):
        train(volumes, volumes, tmp_path / "m.keras", tile=(8, 32), spatial_dims=3, depth=2)
