"""3D U-Nets on a 512x512x256 CT volume: tiled prediction against plain predict, peak memory,
and training patches/s.

    python benchmarks/volume.py [--data ../shared/data/tumour_volumes] [--filters 8]

The volume is the lung2 CT scan of ``tumour_volumes`` (512x512x61, 5 mm slices) in the lung
window, mirrored along the slices to 256 of them: (256, 512, 512) voxels as the package
orders them (slices, rows, columns). Each prediction runs in a fresh process (its own peak
memory), timed after a warm-up batch, with benchmarks/tiling.py's job:

* keras_unet.inference.predict_tiled with a valid-padding 3D U-Net (tiles abut; the result
  equals one whole pass, as tests/test_inference.py checks) and a same-padding one (tiles
  overlap past the reach of zero padding, blended by a 3D Gaussian);
* "plain predict": model.predict_on_batch on the very same tiles, cut beforehand and batched
  identically, the outputs dropped: the model's time, the floor that tiling overhead is
  measured against (target: <= 1.15x).

Then the training step of a 3D U-Net (batch norm, Dice + CE, Adam) on random patches of the
volume from keras_unet.data.make_dataset (foreground oversampling, 3D augmentation): patches/s.
Prints a Markdown table with the machine and the date.
"""

import argparse
import datetime
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tiling import BATCH, REPO, run  # noqa: E402  (one job for 2D and 3D)

SHAPE = (256, 512, 512)


def volume(folder, shape):
    """lung2's CT in the lung window, mirrored along the slices to ``shape``, and its label."""
    from keras_unet.images import normalize_intensity, read_volume

    scan, label = (read_volume(folder / f"lung2_{part}.nii.gz").array for part in ("image", "label"))
    scan = normalize_intensity(scan, "lung")
    crop = tuple(slice(0, min(n, s)) for n, s in zip(shape, scan.shape))
    pads = [(0, max(0, n - s)) for n, s in zip(shape, scan.shape)]
    return (np.pad(scan[crop], pads, mode="symmetric")[..., None],
            np.pad(label[crop], pads, mode="symmetric")[..., None].astype(np.float32))


def train_speed(image, mask, *, filters, depth, patch, batch, steps):
    """Patches/s of training steps after a warm-up of 2, and the model's parameters."""
    import keras

    from keras_unet import build_unet, compile_unet
    from keras_unet.data import make_dataset

    keras.utils.set_random_seed(0)
    model = build_unet((None, None, None, 1), 1, depth=depth, filters=filters, batch_norm=True)
    compile_unet(model)
    data = iter(make_dataset([image], [mask], tile=patch, batch_size=batch, foreground=1 / 3,
                             seed=0))
    batches = [next(data) for _ in range(steps + 2)]  # the pipeline's time left out
    for x, y in batches[:2]:
        model.train_on_batch(x, y)
    start = time.perf_counter()
    for x, y in batches[2:]:
        model.train_on_batch(x, y)
    return steps * batch / (time.perf_counter() - start), model.count_params()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path,
                        default=REPO.parent / "shared" / "data" / "tumour_volumes")
    parser.add_argument("--filters", type=int, default=8, help="first-level filters")
    parser.add_argument("--depth", type=int, default=2, help="poolings")
    parser.add_argument("--shape", default=",".join(map(str, SHAPE)), help="slices,rows,columns")
    parser.add_argument("--tiles", default="96,128,128", help="valid tile, then same tile: "
                        "D,H,W each, ';'-separated (default: the same for both)")
    parser.add_argument("--patch", default="32,96,96", help="training patch D,H,W")
    parser.add_argument("--steps", type=int, default=10, help="training steps timed")
    args = parser.parse_args()
    shape = tuple(int(n) for n in args.shape.split(","))
    tiles = (args.tiles.split(";") * 2)[:2]

    import keras

    from keras_unet import build_unet

    work = Path(tempfile.mkdtemp())
    image, mask = volume(args.data, shape)
    np.save(image_path := work / "volume.npy", image)
    rows = []
    for padding, tile in zip(("valid", "same"), tiles):
        keras.utils.set_random_seed(0)
        model = build_unet((None, None, None, 1), 2, depth=args.depth, filters=args.filters,
                           padding=padding)
        model.save(model_path := work / f"{padding}.keras")
        for kind in ("tiled", "plain"):
            result = run([str(Path(__file__).with_name("tiling.py")), "--job", kind,
                          str(model_path), str(image_path), tile, str(work / f"{kind}.npy")])
            rows.append((padding, tile, kind, result))
    patch = tuple(int(n) for n in args.patch.split(","))
    speed, parameters = train_speed(image, mask, filters=args.filters * 2, depth=args.depth + 1,
                                    patch=patch, batch=2, steps=args.steps)

    print(f"3D U-Nets on a {'x'.join(map(str, shape[::-1]))} volume (lung2 CT, mirrored along "
          f"the slices), depth {args.depth}, filters {args.filters}, batch {BATCH}\n")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}, Keras {keras.__version__} (TensorFlow) · date: "
          f"{datetime.date.today()} · command: `python benchmarks/volume.py`\n")
    print("| padding, tile | method | tiles | seconds | vs plain predict | peak memory (process) |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    plain = {padding: r["seconds"] for padding, _, kind, r in rows if kind == "plain"}
    labels = {"tiled": "`predict_tiled`", "plain": "plain `predict_on_batch` of the same tiles"}
    for padding, tile, kind, r in rows:
        print(f"| {padding}, {tile.replace(',', 'x')} | {labels[kind]} | {r['tiles']} | "
              f"{r['seconds']:.1f} | {r['seconds'] / plain[padding]:.2f}x | "
              f"{r['peak_rss_mb'] / 1024:.2f} GiB |")
    print(f"\ntraining, 3D U-Net depth {args.depth + 1}, filters {args.filters * 2}, batch norm "
          f"({parameters:,} parameters), patches {'x'.join(map(str, patch))}, batch 2: "
          f"**{speed:.2f} patches/s** ({args.steps} steps after 2 of warm-up)")


if __name__ == "__main__":
    main()
