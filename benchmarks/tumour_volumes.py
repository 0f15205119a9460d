"""Tumours in 3D volumes, leave-one-out: Dice, HD95 and surface Dice of each held-out volume.

    python benchmarks/tumour_volumes.py --data-dir ../shared/data/tumour_volumes   # CPU
    python benchmarks/tumour_volumes.py --data-dir ../shared/data/tumour_volumes \\
        --zoom 1 --filters 32 --depth 4 --tile 32,128,128 --steps 4000    # on a GPU

The five volumes of ``tumour_volumes`` (brain1, brain2: T1 MRI; breast1: breast MRI; lung1,
lung2: CT; all with one tumour label), each held out once: a 3D U-Net (same padding, batch
norm, one sigmoid channel, pooled ``(1, 2, 2)`` first because the slices are 2-6.5 mm thick
against 0.6-0.8 mm pixels) is trained from scratch on random patches of the other four,
each centred on a tumour voxel by default (foreground oversampling), with the default 3D
augmentation, the Dice loss and Adam with a cosine-decayed learning rate; then the held-out
volume is predicted whole by ``predict_tiled`` (sliding window, its default window for the
volume, Gaussian blending), resized back to the scan's grid and cut at 0.5. ``--zoom k``
averages k x k pixels within each slice for training and prediction (2: 4x fewer voxels, and
a patch sees twice the width). Intensities: CT in the lung window, MRI z-scored
(``load_tumour_volumes``' default); volumes smaller than a patch are zero-padded to it for
training.

Reported per held-out volume: Dice, HD95 in mm and the normalised surface Dice at
``--tolerance`` mm (both with the scan's voxel spacing), and their means. No target: five
volumes of three kinds of scan are too few to learn from or to judge by; the figures say
what a small 3D U-Net does when each scan type is seen one or two times.

Prints a Markdown table with the machine and the date; ``--json`` keeps every figure.
"""

import argparse
import datetime
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from drive import positive, write_json  # noqa: E402  (benchmarks/drive.py)
from skimage.transform import downscale_local_mean, resize  # noqa: E402

from keras_unet import build_unet, datasets, evaluation, inference  # noqa: E402
from keras_unet.data import make_dataset  # noqa: E402
from keras_unet.images import pad_to  # noqa: E402
from keras_unet.model import smallest_input_size  # noqa: E402
from keras_unet.training import compile_unet  # noqa: E402
from keras_unet.tutorial import dataset_dir, machine  # noqa: E402


def sizes(text):
    """``"16,64,64"`` as three sides > 0."""
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"must be three sides > 0, D,H,W; got {text}")
    return values


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, help="the tumour_volumes folder (default: "
                        "$KERAS_UNET_DATA_DIR/tumour_volumes, else the download)")
    parser.add_argument("--cases", help="hold out only these, comma-separated (all five)")
    parser.add_argument("--filters", type=positive(int), default=8, help="(8)")
    parser.add_argument("--depth", type=positive(int), default=3, help="(3)")
    parser.add_argument("--tile", type=sizes, default=(16, 64, 64),
                        help="training patch D,H,W (16,64,64)")
    parser.add_argument("--predict-tile", type=sizes,
                        help="prediction window D,H,W on the zoomed volume (default: "
                        "predict_tiled's)")
    parser.add_argument("--batch-size", type=positive(int), default=4, help="(4)")
    parser.add_argument("--steps", type=positive(int), default=250, help="per fold (250)")
    parser.add_argument("--foreground", type=float, default=1.0,
                        help="share of patches centred on the tumour (1.0)")
    parser.add_argument("--loss", default="dice", choices=("dice", "dice_ce", "focal_tversky"),
                        help="(dice)")
    parser.add_argument("--zoom", type=positive(int), default=2,
                        help="in-plane downsampling for training and prediction (2)")
    parser.add_argument("--learning-rate", type=positive(float), default=2e-3, help="(0.002)")
    parser.add_argument("--tolerance", type=positive(float), default=2.0,
                        help="surface Dice tolerance in mm (2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write every figure here")
    args = parser.parse_args()
    pools = [(1, 2, 2)] + [(2, 2, 2)] * (args.depth - 1)  # in-plane first: thick slices
    grid = smallest_input_size(args.depth, "same", pool_size=pools)
    if any(t % g for t, g in zip(args.tile, grid)):
        parser.error(f"--tile {','.join(map(str, args.tile))}: D, H, W must be multiples of "
                     f"{', '.join(map(str, grid))} (the pooling of depth {args.depth})")

    started = datetime.datetime.now()
    folder = args.data_dir or dataset_dir("tumour_volumes")
    train, test = datasets.load_tumour_volumes(folder)
    names = train.names + test.names
    images, masks = [*train.images, *test.images], [*train.masks, *test.masks]
    block = (1, args.zoom, args.zoom, 1)
    small = [downscale_local_mean(image, block).astype("float32") for image in images]
    small_masks = [(downscale_local_mean(mask, block) >= 0.5).astype("float32") for mask in masks]
    spacing = dict(zip(names, train.spacing + test.spacing))
    held_out = args.cases.split(",") if args.cases else names
    unknown = sorted(set(held_out) - set(names))
    if unknown:
        parser.error(f"--cases: {', '.join(unknown)} not in {', '.join(names)}")

    rows = []
    for case in held_out:
        others = [i for i, name in enumerate(names) if name != case]
        keras.utils.set_random_seed(args.seed)
        dataset = make_dataset([pad_to(small[i], args.tile) for i in others],
                               [pad_to(small_masks[i], args.tile) for i in others],
                               tile=args.tile, foreground=args.foreground,
                               batch_size=args.batch_size, seed=args.seed)
        model = build_unet((None, None, None, 1), n_classes=1, depth=args.depth,
                           filters=args.filters, batch_norm=True, pool_size=pools)
        schedule = keras.optimizers.schedules.CosineDecay(args.learning_rate, args.steps,
                                                          alpha=0.05)
        compile_unet(model, loss=args.loss, optimizer=keras.optimizers.Adam(schedule))
        print(f"{case}: training on {', '.join(names[i] for i in others)}, "
              f"{model.count_params():,} weights ...", file=sys.stderr, flush=True)
        tick = time.perf_counter()
        model.fit(dataset, epochs=1, steps_per_epoch=args.steps, verbose=0)
        train_minutes = (time.perf_counter() - tick) / 60
        tick = time.perf_counter()
        index = names.index(case)
        probability = resize(inference.predict_tiled(
            model, small[index], tile=args.predict_tile, progress=False), masks[index].shape[:3],
            order=1, mode="edge")
        predict_seconds = time.perf_counter() - tick
        truth, scan = masks[index][..., 0], spacing[case]
        rows.append(dict(
            case=case, shape=list(truth.shape), spacing=list(scan),
            tumour_voxels=int(truth.sum()), predicted_voxels=int((probability > 0.5).sum()),
            dice=float(evaluation.dice(truth, probability)),
            hd95=float(evaluation.hd95(truth, probability, spacing=scan)),
            surface_dice=float(evaluation.surface_dice(truth, probability, spacing=scan,
                                                       tolerance=args.tolerance)),
            train_minutes=train_minutes, predict_seconds=predict_seconds))
        print(f"  Dice {rows[-1]['dice']:.4f}, training {train_minutes:.1f} min, prediction "
              f"{predict_seconds:.0f} s", file=sys.stderr, flush=True)
    mean = {key: float(np.mean([row[key] for row in rows]))
            for key in ("dice", "hd95", "surface_dice")}

    command = "python benchmarks/tumour_volumes.py " + " ".join(sys.argv[1:])
    tile = "x".join(map(str, args.tile))
    window = "x".join(map(str, args.predict_tile)) if args.predict_tile else "predict_tiled's"
    print(f"Tumour volumes, leave-one-out ({len(rows)} of {len(names)} volumes held out in "
          f"turn): 3D U-Net, depth {args.depth}, filters {args.filters}, same padding, batch "
          f"norm, pooled {pools[0]} first; in-plane zoom 1/{args.zoom}; {args.steps} steps of "
          f"{args.batch_size} {tile} patches per fold ({args.foreground:.0%} on the tumour), "
          f"loss {args.loss}, Adam "
          f"{args.learning_rate:g} cosine-decayed; sliding-window prediction in {window} "
          f"windows; surface Dice at {args.tolerance:g} mm; "
          f"{sum(r['train_minutes'] for r in rows):.1f} min of training in all\n")
    print(f"machine: {machine()} · date: {started:%Y-%m-%d} · command: `{command.strip()}`\n")
    print("| held-out volume | voxels (D, H, W) | mm per voxel | tumour voxels | predicted "
          "| Dice | HD95 (mm) | surface Dice |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        print(f"| {row['case']} | {'x'.join(map(str, row['shape']))} | "
              f"{'x'.join(f'{s:g}' for s in row['spacing'])} | {row['tumour_voxels']:,} | "
              f"{row['predicted_voxels']:,} | {row['dice']:.4f} | {row['hd95']:.1f} | "
              f"{row['surface_dice']:.4f} |")
    print(f"| **mean** | | | | | **{mean['dice']:.4f}** | **{mean['hd95']:.1f}** | "
          f"**{mean['surface_dice']:.4f}** |")
    print("\nNo target: five volumes of three kinds of scan (report only).")
    write_json(args, started, volumes=rows, mean=mean)


if __name__ == "__main__":
    main()
