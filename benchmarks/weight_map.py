"""Speed of the paper's border weight map on the 30 real ISBI 2012 masks (512x512).

Times keras_unet.weights.border_weight_map on every mask and the naive reading of the
formula (one full-image distance transform per cell) on a few, and prints a Markdown
table for benchmarks/README.md:

    python benchmarks/weight_map.py [--data DIR] [--naive-masks 3]
"""

import argparse
import datetime
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from keras_unet.weights import border_weight_map, class_weight_map, label_objects

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared/data/isbi2012_em/masks"
W0, SIGMA = 10.0, 5.0


def naive_weight_map(cells, w0=W0, sigma=SIGMA):
    """The formula as written: every cell's distance transform over the whole image."""
    instances, n = label_objects(cells)
    distances = np.sort(
        [ndimage.distance_transform_edt(instances != i) for i in range(1, n + 1)], axis=0
    )
    term = w0 * np.exp(-((distances[0] + distances[1]) ** 2) / (2 * sigma**2))
    term[cells] = 0.0
    return (class_weight_map(cells) + term).astype(np.float32)


def seconds(function, *args):
    start = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - start, result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="folder of ISBI 2012 masks (*.png, 255 = cell, 0 = membrane)")
    parser.add_argument("--naive-masks", type=int, default=3,
                        help="masks to time the naive loop on (it is slow)")
    args = parser.parse_args()
    if args.naive_masks < 1:
        parser.error(f"--naive-masks must be >= 1; got {args.naive_masks}")
    paths = sorted(args.data.glob("*.png"))
    if not paths:
        sys.exit(f"no *.png masks in {args.data}")
    masks = [np.asarray(Image.open(path)) == 255 for path in paths]
    objects = [label_objects(mask)[1] for mask in masks]

    border_weight_map(masks[0], W0, SIGMA)  # warm-up
    fast = [seconds(border_weight_map, mask, W0, SIGMA) for mask in masks]
    naive = [seconds(naive_weight_map, mask) for mask in masks[: args.naive_masks]]
    error = max(np.abs(f[1] - n[1]).max() for f, n in zip(fast, naive))
    fast_s = np.median([t for t, _ in fast])
    naive_s = np.median([t for t, _ in naive])
    same_masks_s = np.median([t for t, _ in fast[: len(naive)]])

    command = shlex.join(["python", os.path.relpath(sys.argv[0]), *sys.argv[1:]])
    machine = platform.processor() or platform.machine()
    print(f"Border weight map (w0={W0:g}, sigma={SIGMA:g}) per 512x512 ISBI 2012 mask, "
          f"median over masks")
    print()
    print(f"machine: {machine}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
          f" · date: {datetime.date.today()} · command: `{command}`")
    print()
    print("| method | masks | objects per mask: median (range) | time per mask "
          "| speed-up on the naive's masks | max difference from naive |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    rows = [
        ("`border_weight_map` (EDT in each cell's box grown by the cutoff)", fast, fast_s,
         f"{naive_s / same_masks_s:.0f}x ({same_masks_s * 1e3:.1f} ms)", f"{error:.1e}"),
        ("naive: one full-image EDT per cell", naive, naive_s, "1x", "0"),
    ]
    for name, timed, t, speed_up, diff in rows:
        counts = objects[: len(timed)]
        print(f"| {name} | {len(timed)} | {np.median(counts):.0f} ({min(counts)}-{max(counts)}) "
              f"| {t * 1e3:.1f} ms | {speed_up} | {diff} |")


if __name__ == "__main__":
    main()
