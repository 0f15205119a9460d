"""Overlap-tile prediction of a 4096x4096 image: overhead, memory, and a peer.

    python benchmarks/tiling.py [--data ../shared/data/isbi2012_em] [--filters 16]

The image is a mosaic of the ISBI 2012 slices (8 x 8 tiles of 512x512). Each job runs
in a fresh process (its own peak memory) and is timed after a warm-up batch:

* keras_unet.inference.predict_tiled, valid padding (the paper's 572 -> 388 tiles)
  and same padding (512 tiles, Gaussian-blended trusted interiors);
* "plain predict": model.predict_on_batch on the very same tiles, cut beforehand and batched
  identically, the outputs dropped: the model's time, the floor that tiling overhead is
  measured against;
* karolzak/keras-unet 0.1.2's get_patches / predict / reconstruct_from_patches with the
  same same-padding model (512 patches, no overlap, as its README does), installed in
  its own virtual environment (benchmarks/.venv-karolzak): it uses the import name
  keras_unet too.

The last column compares the same-padding results with one pass of the whole image
through the model (away from the image's edge, where that pass has its own zero
padding): tiles whose edges are used as they are leave seams there.

Prints a Markdown table with the machine and the date.
"""

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PEER_VENV = REPO / "benchmarks" / ".venv-karolzak"
SIDE, BATCH = 4096, 8

PEER_JOB = """
import json, resource, sys, time
import numpy as np, keras
from keras_unet.utils import get_patches, reconstruct_from_patches  # karolzak/keras-unet
model = keras.models.load_model(sys.argv[1], compile=False)
image = np.load(sys.argv[2])
model.predict_on_batch(np.zeros((8, 512, 512, 1), "float32"))  # warm-up
start = time.perf_counter()
patches = get_patches(image, size=512, stride=512)
predicted = model.predict(patches, batch_size=8, verbose=0)
result = reconstruct_from_patches(predicted, org_img_size=image.shape[:2], size=512, stride=512)
seconds = time.perf_counter() - start
np.save(sys.argv[3], result[0])
print(json.dumps({"seconds": seconds, "tiles": len(patches), "shape": list(result.shape),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def job(kind, model_path, image_path, tile, output_path):
    """One measurement in this (fresh) process; prints JSON. ``tile``: "572" or "64,128,128"
    (a volume's), the image or volume (with its channel axis) in ``image_path``."""
    import keras

    from keras_unet.inference import TilePlan, predict_tiled

    model = keras.models.load_model(model_path, compile=False)
    image = np.load(image_path)
    shape, rank = image.shape[:-1], image.ndim - 1
    tile = tuple(int(t) for t in str(tile).split(",")) * (rank if "," not in str(tile) else 1)
    model.predict_on_batch(np.zeros((BATCH, *tile, image.shape[-1]), np.float32))  # trace once
    plan = TilePlan(model, tile if rank == 3 else tile[0], 0.25, shape)
    corners = plan.corners(*shape)
    if kind == "tiled":
        start = time.perf_counter()
        result = predict_tiled(model, image, tile=tile if rank == 3 else tile[0],
                               batch_size=BATCH, progress=False)
        seconds = time.perf_counter() - start
        np.save(output_path, result)
    else:  # the same tiles, cut beforehand: only the model's time
        pads = [(plan.start[a], plan.axis(n, a)[1]) for a, n in enumerate(shape)] + [(0, 0)]
        padded = np.pad(image, pads, mode="reflect")
        tiles = np.stack([padded[tuple(slice(c, c + t) for c, t in zip(corner, tile))]
                          for corner in corners])
        start = time.perf_counter()
        for first in range(0, len(tiles), BATCH):  # the outputs dropped: the model's time only
            model.predict_on_batch(tiles[first:first + BATCH])
        seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "tiles": len(corners), "peak_rss_mb": peak_rss_mb()}))


def run(arguments, python=sys.executable, cwd=REPO):
    done = subprocess.run([python, *arguments], capture_output=True, text=True, cwd=cwd,
                          env=dict(os.environ, KERAS_BACKEND="tensorflow"))
    if done.returncode:
        sys.exit(f"job {arguments[:3]} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def peer_python():
    """The peer's virtual environment, made on first use."""
    python = PEER_VENV / "bin" / "python"
    if not python.exists():
        print(f"making {PEER_VENV} for karolzak/keras-unet 0.1.2 ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "keras-unet==0.1.2",
                        "tensorflow>=2.16,<2.22", "keras>=3.10", "numpy", "matplotlib"], check=True)
    return python


def mosaic(folder):
    from PIL import Image

    slices = [np.asarray(Image.open(p), np.float32) / 255
              for p in sorted((folder / "images").glob("*.png"))]
    n = SIDE // 512
    rows = [np.concatenate([slices[(r * n + c) % len(slices)] for c in range(n)], axis=1)
            for r in range(n)]
    return np.concatenate(rows, axis=0)[..., None]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "isbi2012_em")
    parser.add_argument("--filters", type=int, default=16, help="first-level filters (64: the paper)")
    parser.add_argument("--job", nargs=5, metavar=("KIND", "MODEL", "IMAGE", "TILE", "OUTPUT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.job:
        kind, model_path, image_path, tile, output_path = args.job
        return job(kind, model_path, image_path, tile, output_path)

    import keras

    from keras_unet import build_unet

    work = Path(tempfile.mkdtemp())
    image_path = work / "mosaic.npy"
    np.save(image_path, mosaic(args.data))
    rows = []
    for padding, tile in (("valid", 572), ("same", 512)):
        keras.utils.set_random_seed(0)
        model = build_unet((None, None, 1), 2, filters=args.filters, padding=padding)
        model_path = work / f"{padding}.keras"
        model.save(model_path)
        for kind in ("tiled", "plain"):
            output = work / f"{padding}-{kind}.npy"
            result = run([__file__, "--job", kind, str(model_path), str(image_path), str(tile),
                          str(output)])
            rows.append((padding, tile, kind, result))
    peer = run(["-c", PEER_JOB, str(work / "same.keras"), str(image_path),
                str(work / "same-karolzak.npy")], python=str(peer_python()), cwd=work)
    rows.append(("same", 512, "karolzak", peer))
    # the same-padding model in one pass over the whole image: what seams deviate from
    whole = keras.models.load_model(work / "same.keras").predict_on_batch(np.load(image_path)[None])[0]
    edge = 128  # the one pass's own zero padding at the image's edge
    for padding, tile, kind, result in rows:
        if padding == "same" and kind != "plain":
            out = np.load(work / f"same-{kind}.npy")
            result["deviation"] = float(np.abs(out - whole)[edge:-edge, edge:-edge].max())

    labels = {"tiled": "keras_unet `predict_tiled`", "plain": "plain `predict_on_batch` of the same tiles",
              "karolzak": "karolzak/keras-unet `get_patches` + `reconstruct_from_patches` (no overlap)"}
    print(f"Tiled prediction of a {SIDE}x{SIDE} gray image, U-Net depth 4, filters "
          f"{args.filters}, batch {BATCH}\n")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
          f", Keras {keras.__version__} (TensorFlow) · date: {datetime.date.today()} · command: "
          f"`python benchmarks/tiling.py --filters {args.filters}`\n")
    print("| padding, tile | method | tiles | seconds | vs plain predict | peak memory (process) "
          "| max deviation from one whole-image pass |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    plain = {padding: r["seconds"] for padding, _, kind, r in rows if kind == "plain"}
    for padding, tile, kind, r in rows:
        ratio = f"{r['seconds'] / plain[padding]:.2f}x" if kind != "karolzak" else "—"
        deviation = f"{r['deviation']:.1e}" if "deviation" in r else "—"
        print(f"| {padding}, {tile} | {labels[kind]} | {r['tiles']} | {r['seconds']:.1f} | {ratio} "
              f"| {r['peak_rss_mb'] / 1024:.2f} GiB | {deviation} |")


if __name__ == "__main__":
    main()
