"""Input pipeline throughput at 512x512: keras_unet.data against the classic recipe.

    python benchmarks/pipeline.py [--data ../shared/data/isbi2012_em] [--batches 40]

Without --data it reads $KERAS_UNET_DATA_DIR/isbi2012_em, else ../shared/data/isbi2012_em
beside the checkout, else the package's cache (downloaded once).

Measures augmented (image, mask) pairs per second on the 30 ISBI 2012 training images
(512x512 gray), batch 8, after a warm-up:

* keras_unet.data.make_dataset with the default Augmentation (flips, rotation, scaling,
  shift, the paper's elastic deformation, brightness/contrast/gamma); with the same
  work as the classic recipe (no intensity changes, which it does not make); and
  without the elastic deformation;
* the classic recipe of Keras 2 era tutorials: two ImageDataGenerators (image and mask)
  with the same seed, zipped, then an elastic deformation per image with
  scipy.ndimage.map_coordinates (a Gaussian-smoothed random field, Simard et al. 2003),
  the same field for the image (bilinear) and the mask (nearest);
* for scale: one training step of a U-Net (filters 32, depth 4, same padding) on the
  same batches, in images per second, which the pipeline has to outpace.

Prints a Markdown table with the machine and the date.
"""

import argparse
import datetime
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from scipy import ndimage  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BATCH = 8


def load(folder):
    names = sorted((folder / "images").glob("*.png"))
    images = np.stack([np.asarray(Image.open(p), np.float32) / 255 for p in names])[..., None]
    masks = np.stack([np.asarray(Image.open(folder / "masks" / p.name)) > 0 for p in names])[..., None]
    return images, masks.astype(np.float32)


def rate(batches, n):
    """Pairs per second over n batches after two warm-up batches."""
    iterator = iter(batches)
    for _ in range(2):
        next(iterator)
    start = time.perf_counter()
    for _ in range(n):
        next(iterator)
    return n * BATCH / (time.perf_counter() - start)


def classic(images, masks, seed=0, alpha=34.0, sigma=4.0):
    """Two zipped Keras ImageDataGenerators plus a SciPy elastic deformation."""
    from keras.src.legacy.preprocessing.image import ImageDataGenerator  # Keras 3: legacy only

    options = dict(rotation_range=15, zoom_range=0.1, width_shift_range=0.05,
                   height_shift_range=0.05, horizontal_flip=True, vertical_flip=True,
                   fill_mode="reflect")
    image_flow = ImageDataGenerator(**options).flow(images, batch_size=BATCH, seed=seed)
    mask_flow = ImageDataGenerator(**options).flow(masks, batch_size=BATCH, seed=seed)
    rng = np.random.default_rng(seed)
    rows, cols = np.meshgrid(np.arange(images.shape[1]), np.arange(images.shape[2]), indexing="ij")
    for image_batch, mask_batch in zip(image_flow, mask_flow):
        out_images, out_masks = np.empty_like(image_batch), np.empty_like(mask_batch)
        for i in range(len(image_batch)):
            dy, dx = (ndimage.gaussian_filter(rng.uniform(-1, 1, rows.shape), sigma) * alpha
                      for _ in range(2))
            coords = [rows + dy, cols + dx]
            out_images[i, ..., 0] = ndimage.map_coordinates(image_batch[i, ..., 0], coords,
                                                            order=1, mode="reflect")
            out_masks[i, ..., 0] = ndimage.map_coordinates(mask_batch[i, ..., 0], coords,
                                                           order=0, mode="reflect")
        yield out_images, out_masks


def train_rate(batches, steps=3):
    import keras

    from keras_unet import build_unet

    model = build_unet((512, 512, 1), 1, filters=32)
    model.compile("adam", "binary_crossentropy")
    iterator = iter(batches)
    model.train_on_batch(*next(iterator))  # build and compile the step
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(*next(iterator))
    keras.backend.clear_session()
    return steps * BATCH / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="the ISBI 2012 folder")
    parser.add_argument("--batches", type=int, default=40, help="batches timed per pipeline")
    args = parser.parse_args()

    from keras_unet.augment import Augmentation
    from keras_unet.data import make_dataset

    from keras_unet import datasets, tutorial

    folder = (args.data or tutorial.dataset_dir("isbi2012", REPO.parent / "shared" / "data")
              or datasets.fetch("isbi2012"))
    images, masks = load(folder)
    rows = []
    for label, augment in (
            ("keras_unet.data, default augmentation (geometry, elastic, intensity)",
             Augmentation()),
            ("keras_unet.data, the classic recipe's work: geometry + elastic, no intensity",
             Augmentation(intensity_probability=0.0)),
            ("keras_unet.data, default without elastic deformation", Augmentation(elastic=False))):
        dataset = make_dataset(images, masks, batch_size=BATCH, augment=augment, seed=0)
        rows.append((label, rate(dataset, args.batches)))
    rows.append(("classic: 2 zipped ImageDataGenerators + scipy map_coordinates elastic",
                 rate(classic(images, masks), args.batches)))
    dataset = make_dataset(images, masks, batch_size=BATCH, seed=0)
    rows.append(("for scale: U-Net training step (filters 32, depth 4), images/s",
                 train_rate(dataset)))

    print(f"Input pipeline, 512x512 gray ISBI 2012 pairs, batch {BATCH}: augmented pairs/s\n")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()} · date: {datetime.date.today()} · "
          f"command: `python benchmarks/pipeline.py`\n")
    classic_rate = rows[3][1]
    print("| pipeline | pairs/s | vs classic |\n| --- | ---: | ---: |")
    for label, value in rows[:-1]:
        print(f"| {label} | {value:.1f} | {value / classic_rate:.1f}x |")
    label, value = rows[-1]
    print(f"| {label} | {value:.1f} | (the pipeline must outpace this) |")


if __name__ == "__main__":
    main()
