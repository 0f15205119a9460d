"""Training and prediction throughput (images/s) of the U-Net, against three peers.

    python benchmarks/throughput.py            # the full matrix below (75 min on 2 CPU cores)
    python benchmarks/throughput.py --quick    # the small configuration only (minutes)
    python benchmarks/throughput.py --peak-tflops 989   # on a GPU: model-FLOP utilisation

Configurations (depth 4, 2 classes, batch 8, one gray channel):

* ``paper``: 572x572 input, valid padding, filters 64 (1024 in the bottleneck): the
  2015 paper's network, 31,030,658 parameters, 301 GFLOP per forward pass and 903 per
  training image (3x the forward: the backward pass costs twice the forward);
* ``same512``: the same network with same padding on 512x512 inputs (385 / 1154 GFLOP);
* ``small256``: 256x256 inputs, same padding, filters 32 (7,759,554 parameters,
  24 / 72 GFLOP).

Each configuration runs in float32 and in mixed precision
(``keras_unet.training.set_mixed_precision``: ``mixed_bfloat16`` on a CPU,
``mixed_float16`` on a GPU), with XLA on and off (``compile_unet(jit_compile=True/False)``;
with ``False`` the JAX backend runs the step op by op, un-jitted), on the TensorFlow and
JAX backends. Our model is ``keras_unet.build_unet`` with its defaults (the paper's
dropout 0.5 after the deepest encoder level and the bottleneck, transposed-convolution
up-sampling), compiled by ``keras_unet.training.compile_unet`` with the pixel-wise
cross-entropy (``loss="cross_entropy"``), Adam at 1e-3 and no metrics.

Every job (one implementation, configuration, backend, precision, XLA setting) runs in
a fresh process. Inputs are synthetic: one fixed batch of standard-normal images and
random {0, 1} masks. The train step is ``model.train_on_batch`` on that batch, the
prediction ``model.predict_on_batch`` on it (both return numpy, so every timed call
waits for its device). The first call (tracing, XLA compilation) is timed apart, then
``--warmup`` untimed calls, then ``--repeats`` timed calls: the figure is the median.

Peers, the same run, each in its own virtual environment made on first use (both use
the import name of their package, and the first one is ``keras_unet`` too), on the
TensorFlow backend they were written for, with the very same loss (Keras's
``SparseCategoricalCrossentropy``), optimizer, batch, inputs and timing:

* karolzak/keras-unet 0.1.2 ``custom_unet(filters=64, num_layers=4, use_batch_norm=False,
  dropout=0, upsample_mode="deconv", output_activation="softmax")``
  (``benchmarks/.venv-karolzak``): the same layers and parameter count; it has no
  valid padding and no dropout at the end of the contracting path (its dropout is in
  every block), and its up-convolution has no ReLU;
* keras-unet-collection 0.1.13 ``unet_2d(filter_num=[64, ..., 1024], batch_norm=False,
  pool=True, unpool=False, activation="ReLU", output_activation="Softmax")``
  (``benchmarks/.venv-kuc``, Keras 3 + Pillow, which the package imports without
  declaring it): same padding only, and its decoder cannot be configured to the
  paper's: 3x3 (not 2x2) transposed convolutions and one more 3x3 convolution per
  level before the concatenation, so it has more parameters and FLOPs; the table
  shows both, and the ratio per FLOP.

* a PyTorch U-Net of identical topology (``torch_unet`` below, in this script's own
  environment: ``pip install -e ".[torch]"``), in every configuration including the
  paper's, trained with ``torch.nn.functional.cross_entropy`` and Adam on the same
  batch: ``channels_last``, ``torch.autocast`` for mixed precision (float16 with a
  ``GradScaler`` on a GPU, bfloat16 on a CPU) and ``torch.compile`` in the "XLA on"
  rows.

Neither Keras peer has valid padding, so in the paper configuration only PyTorch runs
beside us.

Where a GPU is found, the table adds model-FLOP utilisation: the FLOPs of the
convolutions (counted from the built model: 301 GFLOP per forward pass at 572 valid,
3x for a training image) times images/s, over the device's dense peak: ``--peak-tflops``
(float16/bfloat16 tensor cores; float32 rows use ``--peak-tflops-fp32``, by default
half of it, i.e. TF32), or a built-in figure for A100/H100/H200/L4.

Prints Markdown tables with the machine and the date.
"""

import argparse
import datetime
import json
import math
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
PEERS = {
    # name: (venv, packages to install, label)
    "karolzak": (REPO / "benchmarks" / ".venv-karolzak",
                 ["keras-unet==0.1.2", "tensorflow>=2.16,<2.22", "keras>=3.10", "numpy",
                  "matplotlib"],
                 "karolzak/keras-unet `custom_unet`"),
    "kuc": (REPO / "benchmarks" / ".venv-kuc",
            ["keras-unet-collection==0.1.13", "tensorflow>=2.16,<2.22", "keras>=3.10", "numpy",
             "pillow"],
            "keras-unet-collection `unet_2d`"),
    # PyTorch runs in this script's own environment (the [torch] extra).
    "torch": (None, [], "PyTorch U-Net, same topology"),
}
CONFIGS = {
    "paper": dict(size=572, padding="valid", filters=64, label="572x572, valid, filters 64 (the paper)"),
    "same512": dict(size=512, padding="same", filters=64, label="512x512, same, filters 64"),
    "small256": dict(size=256, padding="same", filters=32, label="256x256, same, filters 32"),
}
PEER_NOTES = {
    "karolzak": "`custom_unet(filters, num_layers=4, use_batch_norm=False, dropout=0, "
                "upsample_mode='deconv', output_activation='softmax')`: the same convolutions "
                "and parameter count; same padding only; no ReLU after its up-convolutions and "
                "no dropout (keras_unet: dropout 0.5 after the deepest encoder level and the "
                "bottleneck, a little extra work on our side).",
    "kuc": "`unet_2d(filter_num, stack_num_down=2, stack_num_up=2, activation='ReLU', "
           "output_activation='Softmax', batch_norm=False, pool=True, unpool=False)`: same "
           "padding only; its decoder cannot be set to the paper's: 3x3 (not 2x2) transposed "
           "convolutions and one extra 3x3 convolution per level before the concatenation, "
           "hence more parameters and FLOPs (the last column divides them out); no dropout.",
    "torch": "`torch_unet` in this script: keras_unet's topology layer for layer (the same "
             "parameter count, dropout included), `channels_last`, `torch.autocast` (float16 "
             "with a GradScaler on a GPU, bfloat16 on a CPU) for mixed precision and "
             "`torch.compile` in the XLA-on rows; its ratio is against keras_unet's best "
             "backend at the same precision and XLA setting.",
}
DEPTH, N_CLASSES = 4, 2
# Dense peak TFLOP/s: (float16/bfloat16 tensor cores, TF32), for --peak-tflops's default.
KNOWN_PEAKS = {"H100 PCIe": (756, 378), "H100": (989, 495), "H200": (989, 495),
               "A100": (312, 156), "L4": (121, 60)}


# ---------------------------------------------------------------- one job (fresh process)


def conv_flops(model):
    """FLOPs of one image's forward pass through the model's convolutions (2 per MAC)."""
    total = 0
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "Conv2D":
            spatial = layer.output.shape[1:3]
        elif kind == "Conv2DTranspose":  # every input pixel meets the whole kernel
            spatial = layer.input.shape[1:3]
        else:
            continue
        total += 2 * math.prod(spatial) * math.prod(layer.kernel.shape)
    return total


def accelerator():
    """The GPU the active backend computes on, or None."""
    import keras

    if keras.backend.backend() == "jax":
        import jax

        device = jax.devices()[0]
        return device.device_kind if device.platform == "gpu" else None
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return None
    return tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")


def build(impl, size, padding, filters):
    if impl == "ours":
        from keras_unet import build_unet

        return build_unet((size, size, 1), N_CLASSES, depth=DEPTH, filters=filters, padding=padding)
    if padding != "same":
        raise ValueError(f"{impl} has no valid padding")
    if impl == "karolzak":
        from keras_unet.models import custom_unet  # karolzak/keras-unet, in its own venv

        return custom_unet((size, size, 1), num_classes=N_CLASSES, filters=filters,
                           num_layers=DEPTH, use_batch_norm=False, dropout=0.0,
                           upsample_mode="deconv", output_activation="softmax")
    if impl == "kuc":
        from keras_unet_collection import models

        return models.unet_2d((size, size, 1), [filters * 2**i for i in range(DEPTH + 1)],
                              n_labels=N_CLASSES, stack_num_down=2, stack_num_up=2,
                              activation="ReLU", output_activation="Softmax", batch_norm=False,
                              pool=True, unpool=False, backbone=None, name="unet")
    raise ValueError(impl)


def torch_unet(filters, padding, n_classes=N_CLASSES, depth=DEPTH, dropout=0.5):
    """keras_unet's ``build_unet`` topology in PyTorch (the same layers, parameters and
    FLOPs): two 3x3 convolutions + ReLU per level, 2x2 max-pooling, dropout after the
    deepest encoder level and the bottleneck, 2x2 stride-2 transposed convolutions + ReLU,
    centre-cropped skips under valid padding, a 1x1 head (logits)."""
    import torch
    from torch import nn

    pad = 1 if padding == "same" else 0

    def block(c_in, c_out):
        return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=pad), nn.ReLU(inplace=True),
                             nn.Conv2d(c_out, c_out, 3, padding=pad), nn.ReLU(inplace=True))

    class UNet(nn.Module):
        def __init__(self):
            super().__init__()
            widths = [filters * 2**i for i in range(depth + 1)]
            self.encoders = nn.ModuleList(
                block(c_in, c_out) for c_in, c_out in zip([1] + widths[:-2], widths[:-1]))
            self.bottleneck = block(widths[-2], widths[-1])
            self.ups = nn.ModuleList(nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2)
                                     for i in reversed(range(depth)))
            self.decoders = nn.ModuleList(block(2 * widths[i], widths[i])
                                          for i in reversed(range(depth)))
            self.head = nn.Conv2d(widths[0], n_classes, 1)
            self.pool, self.dropout = nn.MaxPool2d(2), nn.Dropout(dropout)

        def forward(self, x):
            skips = []
            for level, encoder in enumerate(self.encoders, 1):
                x = encoder(x)
                if level == depth:
                    x = self.dropout(x)
                skips.append(x)
                x = self.pool(x)
            x = self.dropout(self.bottleneck(x))
            for up, decoder, skip in zip(self.ups, self.decoders, reversed(skips)):
                x = torch.relu(up(x))
                crop = (skip.shape[-1] - x.shape[-1]) // 2
                if crop:
                    skip = skip[..., crop:-crop, crop:-crop]
                x = decoder(torch.cat([skip, x], dim=1))
            return self.head(x)

    return UNet()


def torch_flops(model, size, device="cpu"):
    """FLOPs of one image's forward pass through the convolutions (2 per MAC, counted as
    :func:`conv_flops` counts them), and the output side."""
    import torch

    flops = []

    def count(layer, inputs, output):
        spatial = inputs[0] if isinstance(layer, torch.nn.ConvTranspose2d) else output
        flops.append(2 * layer.weight.numel() * spatial.shape[-2:].numel())

    hooks = [m.register_forward_hook(count) for m in model.modules()
             if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    try:
        with torch.no_grad():
            out = model(torch.zeros(1, 1, size, size, device=device)).shape[-1]
    finally:
        for hook in hooks:
            hook.remove()
    return sum(flops), out


def torch_job(spec):
    """The PyTorch peer: channels_last, AMP (float16 + GradScaler on a GPU, bfloat16 on
    a CPU) for mixed precision, ``torch.compile`` for "XLA on"; prints one line of JSON."""
    import torch

    torch.manual_seed(0)
    config = CONFIGS[spec["config"]]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    mixed = spec["precision"] == "mixed"
    amp = torch.float16 if device == "cuda" else torch.bfloat16
    model = torch_unet(spec["filters"], config["padding"]).to(device,
                                                              memory_format=torch.channels_last)
    size, batch = config["size"], spec["batch"]
    flops, out = torch_flops(model, size, device)
    runner = torch.compile(model) if spec["xla"] else model
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    scaler = torch.amp.GradScaler(device, enabled=mixed and amp == torch.float16)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 1, size, size, generator=generator).to(
        device, memory_format=torch.channels_last)
    y = torch.randint(0, N_CLASSES, (batch, out, out), generator=generator).to(device)

    def train():
        model.train()
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device, dtype=amp, enabled=mixed):
            loss = torch.nn.functional.cross_entropy(runner(x), y)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        return loss.item()  # waits for the device

    def predict():
        model.eval()
        with torch.no_grad(), torch.autocast(device, dtype=amp, enabled=mixed):
            return torch.softmax(runner(x).float(), dim=1).cpu()

    gpu = torch.cuda.get_device_name() if device == "cuda" else None
    result = {"params": sum(p.numel() for p in model.parameters()), "flops": flops,
              "policy": f"amp {str(amp).split('.')[-1]}" if mixed else "float32", "gpu": gpu,
              "jit": bool(spec["xla"]), "torch": torch.__version__,
              "peer_version": torch.__version__, "backend": "torch"}
    result.update(measure_calls(train, predict, spec))
    print(json.dumps(result))


def measure_calls(train, predict, spec):
    """Time the first call apart, then warm-up and timed calls, of both phases."""

    def timed(call, repeats, what, budget=math.inf):
        """Time up to `repeats` calls, fewer once they have taken `budget` seconds."""
        seconds = []
        while len(seconds) < repeats and sum(seconds) < budget:
            start = time.perf_counter()
            call()
            seconds.append(time.perf_counter() - start)
            print(f"  {what}: {seconds[-1]:.2f} s", file=sys.stderr, flush=True)
        return seconds

    def measure(call, name):
        first = timed(call, 1, f"first {name}")[0]
        if first < spec["budget"]:  # a slower first call is all step, hardly compilation
            timed(call, spec["warmup"], f"warm-up {name}", spec["budget"] / 2)
        return first, timed(call, spec["repeats"], name, spec["budget"])

    result = {}
    result["train_first_s"], result["train_s"] = measure(train, "train step")
    result["predict_first_s"], result["predict_s"] = measure(predict, "predict")
    result["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return result


def job(spec):
    """One measurement in this (fresh) process; prints one line of JSON."""
    if spec["impl"] == "torch":
        return torch_job(spec)
    import keras
    import numpy as np

    keras.utils.set_random_seed(0)
    impl, gpu = spec["impl"], accelerator()
    policy = "float32"
    if spec["precision"] == "mixed":
        if impl == "ours":
            from keras_unet.training import set_mixed_precision

            policy = set_mixed_precision()
        else:
            policy = "mixed_float16" if gpu else "mixed_bfloat16"
            keras.mixed_precision.set_global_policy(policy)
    config = CONFIGS[spec["config"]]
    model = build(impl, config["size"], config["padding"], spec["filters"])
    if impl == "ours":
        from keras_unet.training import compile_unet

        compile_unet(model, loss="cross_entropy", optimizer="adam", learning_rate=1e-3,
                     metrics=[], jit_compile=spec["xla"])
    else:
        model.compile(optimizer=keras.optimizers.Adam(1e-3),
                      loss=keras.losses.SparseCategoricalCrossentropy(), jit_compile=spec["xla"])
    batch, size = spec["batch"], config["size"]
    out = model.output_shape[1]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, size, size, 1), dtype=np.float32)
    y = rng.integers(0, N_CLASSES, (batch, out, out)).astype(np.int32)

    result = {"params": model.count_params(), "flops": conv_flops(model), "policy": policy,
              "gpu": gpu, "jit": bool(model.jit_compile), "keras": keras.__version__,
              "backend": keras.backend.backend()}
    if impl != "ours":
        from importlib.metadata import version

        result["peer_version"] = version({"karolzak": "keras-unet",
                                          "kuc": "keras-unet-collection"}[impl])
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        result["tensorflow"] = tf.__version__
    else:
        import jax

        result["jax"] = jax.__version__
    result.update(measure_calls(lambda: model.train_on_batch(x, y),
                                lambda: model.predict_on_batch(x), spec))
    print(json.dumps(result))


# ------------------------------------------------------------------------- the driver


def peer_python(name):
    """The peer's virtual environment, made on first use."""
    venv, packages, _ = PEERS[name]
    if venv is None:
        return Path(sys.executable)
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"making {venv} ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *packages], check=True)
    return python


def run_job(spec, python, backend, timeout, verbose=False):
    """Run one job in a fresh process; its JSON, or {"error": ...}."""
    env = dict(os.environ, KERAS_BACKEND=backend)
    with tempfile.TemporaryDirectory() as cwd:  # keep this repository off the peer's path
        try:
            done = subprocess.run([str(python), str(Path(__file__).resolve()), "--job",
                                   json.dumps(spec)], stdout=subprocess.PIPE,
                                  stderr=None if verbose else subprocess.PIPE, text=True,
                                  cwd=cwd, env=env, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"error": f"over {timeout} s (--job-timeout)"}
    if done.returncode:
        lines = [line for line in (done.stderr or "").strip().splitlines() if line.strip()]
        reason = lines[-1] if lines else f"exit status {done.returncode}"
        if done.returncode in (-9, 137):
            reason = "killed (out of memory?)"
        elif done.returncode < 0:
            reason = f"killed (signal {-done.returncode})"
        print((done.stderr or "")[-3000:], file=sys.stderr)
        return {"error": reason[:160]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def per_second(result, kind, batch):
    return batch / statistics.median(result[f"{kind}_s"])


def peak_tflops(args, gpu, policy):
    """Dense peak TFLOP/s of the GPU for this precision, or None."""
    mixed = policy != "float32"
    if args.peak_tflops:
        fp32 = args.peak_tflops_fp32 or args.peak_tflops / 2
        return args.peak_tflops if mixed else fp32
    for name, (half, tf32) in KNOWN_PEAKS.items():
        if name in gpu:
            return half if mixed else tf32
    return None


def fmt(value, digits=2):
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}" if value >= 1 else f"{value:.{digits + 1}f}"


def report(args, results, started, skipped=()):
    batch = args.batch
    first = next((r for r in results.values() if "error" not in r), {})
    gpu = next((r["gpu"] for r in results.values() if r.get("gpu")), None)
    versions = ", ".join(f"{k} {first[k]}" for k in ("keras", "tensorflow") if k in first)
    jax_version = next((r["jax"] for r in results.values() if "jax" in r), None)
    from keras_unet.tutorial import cpu_name  # here, not at start-up: it loads Keras

    device = f"GPU: {gpu}" if gpu else f"CPU only: {cpu_name()}"
    command = "python benchmarks/throughput.py" + (" " + " ".join(sys.argv[1:]) if sys.argv[1:] else "")
    print(f"U-Net throughput, images/s, batch {batch}, depth {DEPTH}, {N_CLASSES} classes\n")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {device}, Python "
          f"{platform.python_version()}, {versions}" + (f", JAX {jax_version}" if jax_version else "")
          + f" · date: {started:%Y-%m-%d} · command: `{command}` · timing: the first call "
          f"apart, {args.warmup} warm-up call(s), then the median of {args.repeats} timed calls, "
          f"fewer where they take over {args.budget:.0f} s (counts in the table) · train step: "
          f"`train_on_batch` on one fixed batch; predict: `predict_on_batch` on it\n")

    mfu = gpu is not None
    print("**keras_unet** (`build_unet` + `compile_unet(loss='cross_entropy', metrics=[])`)\n")
    header = ("| configuration | backend | precision | XLA | first train step (s) | train img/s "
              "| predict img/s | train GFLOP/s | predict GFLOP/s | timed calls |")
    rule = "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    if mfu:
        header += " MFU train | MFU predict |"
        rule += " ---: | ---: |"
    print(header)
    print(rule)
    for (impl, config, backend, precision, xla), r in results.items():
        if impl != "ours":
            continue
        row = (f"| {CONFIGS[config]['label']} | {backend} | {precision_label(r, precision)} "
               f"| {onoff(xla, backend)} |")
        if "error" in r:
            print(row + f" failed: {r['error']} | | | | | |" + (" | |" if mfu else ""))
            continue
        train, pred = per_second(r, "train", batch), per_second(r, "predict", batch)
        gflop = r["flops"] / 1e9
        row += (f" {r['train_first_s']:.1f} | {fmt(train)} | {fmt(pred)} | {fmt(3 * gflop * train)} "
                f"| {fmt(gflop * pred)} | {len(r['train_s'])} + {len(r['predict_s'])} |")
        if mfu:
            peak = peak_tflops(args, r["gpu"] or "", r["policy"]) if r.get("gpu") else None
            if peak:
                row += (f" {3 * gflop * train / 1e3 / peak:.1%} | {gflop * pred / 1e3 / peak:.1%} |")
            else:
                row += " (give --peak-tflops) | |"
        print(row)

    if skipped:
        print(f"\nNot run (no GPU; `--full-matrix` runs them): JAX with {'; '.join(skipped)}.")
    peer_rows = [(key, r) for key, r in results.items() if key[0] != "ours"]
    if not peer_rows:
        return
    print("\n**Peers**, same run, each in its own virtual environment, same loss, optimizer, "
          "batch, inputs and timing; ratio = keras_unet's images/s over the peer's in the same "
          "backend, precision and XLA setting\n")
    print("| configuration | backend | precision | XLA | model | parameters | forward GFLOP/img "
          "| train img/s | predict img/s | ours/peer train | ours/peer predict "
          "| ours/peer train, per FLOP |")
    print("| --- | --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for (impl, config, backend, precision, xla), r in peer_rows:
        ours = results.get(("ours", config, backend, precision, xla), {"error": "not run"})
        if impl == "torch":  # against our best backend at this precision and XLA setting
            ours = max((r for (i, c, _, p, x), r in results.items() if (i, c, p, x) == (
                "ours", config, precision, xla) and "error" not in r),
                key=lambda r: per_second(r, "train", batch), default={"error": "not run"})
        row = (f"| {CONFIGS[config]['label']} | {backend} | {precision_label(r, precision)} "
               f"| {onoff(xla, backend)} |")
        peer_label = f"{PEERS[impl][2]} {r.get('peer_version', '')}".strip()
        if "error" in r:
            print(row + f" {peer_label} | failed: {r['error']} | | | | | | |")
            continue
        params, gflop = r["params"], r["flops"] / 1e9
        if "error" not in ours:
            dp = params - ours["params"]
            params_text = (f"{params:,} (= ours)" if dp == 0
                           else f"{params:,} ({dp:+,} vs ours {ours['params']:,})")
            df = r["flops"] / ours["flops"]
            flops_text = f"{gflop:.3g} (= ours)" if df == 1 else f"{gflop:.3g} ({df:.2f}x ours)"
        else:
            params_text, flops_text = f"{params:,}", f"{gflop:.3g}"
        train, pred = per_second(r, "train", batch), per_second(r, "predict", batch)
        row += f" {peer_label} | {params_text} | {flops_text} | {fmt(train)} | {fmt(pred)} |"
        if "error" in ours:
            row += f" (ours: {ours['error']}) | | |"
        else:
            ours_train, ours_pred = per_second(ours, "train", batch), per_second(ours, "predict", batch)
            per_flop = (ours_train * ours["flops"]) / (train * r["flops"])
            row += (f" **{ours_train / train:.2f}** | **{ours_pred / pred:.2f}** | {per_flop:.2f} |")
        print(row)
    print()
    for impl in dict.fromkeys(key[0] for key, _ in peer_rows):
        print(f"* {PEERS[impl][2]}: {PEER_NOTES[impl]}")

    print("\n**Best setting of each**, per configuration (train and predict picked separately)\n")
    print("| configuration | model | train img/s | setting | predict img/s | setting "
          "| ours best / this best: train | predict |")
    print("| --- | --- | ---: | --- | ---: | --- | ---: | ---: |")
    for config in dict.fromkeys(key[1] for key in results):
        best = {}
        for (impl, cfg, backend, precision, xla), r in results.items():
            if cfg != config or "error" in r:
                continue
            setting = f"{backend}, {precision_label(r, precision)}, XLA {onoff(xla, backend)}"
            for kind in ("train", "predict"):
                value = per_second(r, kind, batch)
                if value > best.get((impl, kind), (0, ""))[0]:
                    best[impl, kind] = (value, setting)
        for impl in dict.fromkeys(key[0] for key in best):
            (train, train_setting), (pred, pred_setting) = best[impl, "train"], best[impl, "predict"]
            label = "keras_unet" if impl == "ours" else PEERS[impl][2]
            row = (f"| {CONFIGS[config]['label']} | {label} | {fmt(train)} | {train_setting} "
                   f"| {fmt(pred)} | {pred_setting} |")
            if impl == "ours" or ("ours", "train") not in best:
                row += " | |"
            else:
                row += (f" **{best['ours', 'train'][0] / train:.2f}** "
                        f"| **{best['ours', 'predict'][0] / pred:.2f}** |")
            print(row)


def onoff(xla, backend=None):
    if backend == "torch":
        return "on (torch.compile)" if xla else "off (eager)"
    return "on" if xla else ("off (op by op)" if backend == "jax" else "off")


def precision_label(result, precision):
    return result.get("policy") or ("float32" if precision == "float32" else "mixed")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="paper,same512,small256",
                        help=f"comma-separated, of {', '.join(CONFIGS)}")
    parser.add_argument("--backends", default="tensorflow,jax")
    parser.add_argument("--precisions", default="float32,mixed")
    parser.add_argument("--xla", default="off,on", help="off, on, or both")
    parser.add_argument("--peers", default="karolzak,kuc,torch",
                        help="comma-separated, of karolzak, kuc, torch; or none")
    parser.add_argument("--peer-backends", default="tensorflow",
                        help="backends to run the peers on (jax needs jax in their venvs)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--filters", type=int,
                        help="first-level filters for every configuration (a smaller check)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls after the first")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls (median)")
    parser.add_argument("--budget", type=float, default=90,
                        help="seconds of timed calls per job and phase (train, predict) after "
                             "which no more are made (at least one is)")
    parser.add_argument("--job-timeout", type=int, default=1800, help="seconds per job")
    parser.add_argument("--peak-tflops", type=float,
                        help="GPU dense float16/bfloat16 peak, TFLOP/s (for MFU)")
    parser.add_argument("--peak-tflops-fp32", type=float,
                        help="GPU float32 (TF32) peak, TFLOP/s; default half of --peak-tflops")
    parser.add_argument("--full-matrix", action="store_true",
                        help="without a GPU, also run JAX's mixed-precision and un-jitted "
                             "variants of the 64-filter configurations (10+ min each on 2 cores)")
    parser.add_argument("--quick", action="store_true",
                        help="small256 only, 2 timed calls: a check in minutes")
    parser.add_argument("--verbose", action="store_true", help="show each job's log and timings")
    parser.add_argument("--json", type=Path, help="also write every job's raw result here, as it ends")
    parser.add_argument("--job", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.job:
        return job(json.loads(args.job))
    if args.quick:
        args.configs, args.repeats = "small256", 2
    if args.filters:
        for config in CONFIGS.values():
            config["label"] = config["label"].split(", filters")[0] + f", filters {args.filters}"

    split = lambda text: [t for t in text.split(",") if t and t != "none"]  # noqa: E731
    configs, backends, precisions = split(args.configs), split(args.backends), split(args.precisions)
    xlas = [x == "on" for x in split(args.xla)]
    peers, peer_backends = split(args.peers), split(args.peer_backends)
    for config in configs:
        if config not in CONFIGS:
            parser.error(f"unknown configuration {config!r}")
    for peer in peers:
        if peer not in PEERS:
            parser.error(f"unknown peer {peer!r}")
    pythons = {"ours": Path(sys.executable)}
    pythons.update({peer: peer_python(peer) for peer in peers})

    gpu = shutil.which("nvidia-smi") and subprocess.run(
        ["nvidia-smi", "-L"], capture_output=True).returncode == 0
    started = datetime.datetime.now()
    results, skipped = {}, []
    for config in configs:
        for precision in precisions:
            for xla in xlas:
                for backend in backends:
                    impls = ["ours"] + [p for p in peers if p != "torch" and backend in
                                        peer_backends and CONFIGS[config]["padding"] == "same"]
                    if "torch" in peers and backend == backends[-1]:
                        impls.append("torch")  # once, after ours on every backend
                    for impl in impls:
                        filters = args.filters or CONFIGS[config]["filters"]
                        if (backend == "jax" and not gpu and not args.full_matrix and filters >= 64
                                and (precision != "float32" or not xla)):
                            skipped.append(f"{CONFIGS[config]['label']}, {precision}, XLA {onoff(xla)}")
                            continue
                        spec = dict(impl=impl, config=config, precision=precision, xla=xla,
                                    filters=filters,
                                    batch=args.batch, warmup=args.warmup, repeats=args.repeats,
                                    budget=args.budget)
                        tick = time.perf_counter()
                        job_backend = "torch" if impl == "torch" else backend
                        result = run_job(spec, pythons[impl], job_backend, args.job_timeout,
                                         args.verbose)
                        results[(impl, config, job_backend, precision, xla)] = result
                        if args.json:
                            args.json.write_text(json.dumps(
                                [dict(zip(("impl", "config", "backend", "precision", "xla"), key),
                                      **value) for key, value in results.items()], indent=1))
                        summary = result.get("error") or (
                            f"train {per_second(result, 'train', args.batch):.2f} img/s, predict "
                            f"{per_second(result, 'predict', args.batch):.2f} img/s, "
                            f"{result['params']:,} parameters")
                        print(f"[{time.perf_counter() - tick:6.0f} s] {impl} {config} {job_backend} "
                              f"{precision} XLA {onoff(xla)}: {summary}", file=sys.stderr, flush=True)
    report(args, results, started, skipped)


if __name__ == "__main__":
    main()
