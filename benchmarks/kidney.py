"""Kidney and kidney tumour CT (KiTS19, 24 slices of 5 patients): leave one patient out.

    python benchmarks/kidney.py --data-dir ../shared/data/kidney_tumour_ct   # 6 min on 2 CPU cores
    python benchmarks/kidney.py --data-dir ../shared/data/kidney_tumour_ct --size 512 --tile 256 \\
        --filters 32 --depth 5 --steps 3000    # on a GPU

Five folds: each patient (10036: 16 slices, 10037: 3, 10040: 3, 10038: 1, 10041: 1) is held
out in turn, a network trains on the other four and is scored on the held-out one, all its
slices pooled, once per loss of ``--losses`` (``compile_unet`` names; default cross-entropy,
Dice + cross-entropy and focal Tversky), with the same seed and steps. The recipe is notebook
08's: the 512x512 slices (grey = the voxel value clipped to 0-255) averaged down to ``--size``
a side (masks: nearest), a same-padding U-Net (depth 3, batch norm, softmax over background,
kidney and tumour), random ``--tile`` windows of which ``--foreground`` are centred on kidney
or tumour pixels, small rotations, scalings, shifts and intensity changes but no flips, Adam
with a cosine-decayed learning rate; the probabilities are resized back to 512x512 (bilinear)
and the arg-max is scored against the original masks.

Reported: the kidney and the tumour Dice of each held-out patient, and their mean and standard
deviation over the patients (the tumour's over the patients with a tumour: 10038's one slice
has none, so its tumour Dice is undefined and the pixels wrongly called tumour are shown).
No target: 24 slices of 5 patients are far too few to compare with KiTS19 results (the
challenge scores 90 test patients in 3D; its winners reach a tumour Dice of about 0.85), and
the spread between patients is larger than most differences between losses.

Prints Markdown tables with the machine and the date; ``--json`` keeps every figure.
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
from liver import shrink  # noqa: E402  (benchmarks/liver.py: block means)

from keras_unet import build_unet, datasets, evaluation  # noqa: E402
from keras_unet.augment import Augmentation  # noqa: E402
from keras_unet.data import make_dataset  # noqa: E402
from keras_unet.training import LOSSES, compile_unet  # noqa: E402
from keras_unet.tutorial import dataset_dir, machine  # noqa: E402

SIDE = 512  # the slices' size
DEFAULT_LOSSES = "cross_entropy,dice_ce,focal_tversky"


def losses(text):
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in LOSSES]
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"comma-separated loss names of {', '.join(LOSSES)}; got {text!r}")
    return names


def fold(args, folder, held_out, loss, factor):
    """Train on every patient but ``held_out`` with ``loss``; its kidney and tumour Dice."""
    train, test = datasets.load_kidney_tumour_ct(folder, test_patients=[held_out])
    keras.utils.set_random_seed(args.seed)
    augment = Augmentation(flip_horizontal=False, flip_vertical=False, rotate90=False,
                           rotation=10.0, elastic=False)
    half = factor // 2  # nearest: the block centres
    data = make_dataset(shrink(train.images, factor), train.masks[:, half::factor, half::factor],
                        tile=args.tile, foreground=args.foreground, augment=augment,
                        batch_size=args.batch_size, seed=args.seed)
    model = build_unet((None, None, 1), n_classes=3, depth=args.depth, filters=args.filters,
                       batch_norm=True)
    schedule = keras.optimizers.schedules.CosineDecay(args.learning_rate,
                                                      decay_steps=args.steps, alpha=0.05)
    compile_unet(model, loss=loss, optimizer=keras.optimizers.Adam(schedule))
    tick = time.perf_counter()
    model.fit(data, epochs=1, steps_per_epoch=args.steps, verbose=0)
    small = model.predict(shrink(test.images, factor), batch_size=4, verbose=0)
    probabilities = keras.ops.convert_to_numpy(keras.ops.image.resize(
        small, test.images.shape[1:3], interpolation="bilinear"))
    dice = evaluation.dice(test.masks, probabilities, n_classes=3)["per_class"]
    has_tumour = bool((test.masks == 2).any())
    row = dict(patient=held_out, loss=loss, slices=len(test.names), train_slices=len(train.names),
               kidney_pixels=int((test.masks == 1).sum()), tumour_pixels=int((test.masks == 2).sum()),
               kidney=float(dice[1]), tumour=float(dice[2]) if has_tumour else None,
               predicted_tumour_pixels=int((probabilities.argmax(-1) == 2).sum()),
               parameters=model.count_params(), seconds=time.perf_counter() - tick)
    keras.backend.clear_session()
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, help="the kidney_tumour_ct folder "
                        "(default: $KERAS_UNET_DATA_DIR/kidney_tumour_ct)")
    parser.add_argument("--losses", type=losses, default=losses(DEFAULT_LOSSES),
                        help=f"comma-separated compile_unet losses ({DEFAULT_LOSSES})")
    parser.add_argument("--patients", help="comma-separated patients to hold out (all five)")
    parser.add_argument("--size", type=positive(int), default=128,
                        help="train and predict at this side, 512 divided by 1, 2, 4, ... (128)")
    parser.add_argument("--tile", type=positive(int), default=64, help="(64)")
    parser.add_argument("--foreground", type=float, default=0.5,
                        help="share of windows centred on kidney or tumour, in [0, 1] (0.5)")
    parser.add_argument("--filters", type=positive(int), default=8, help="(8)")
    parser.add_argument("--depth", type=positive(int), default=3, help="(3)")
    parser.add_argument("--batch-size", type=positive(int), default=8, help="(8)")
    parser.add_argument("--steps", type=positive(int), default=160,
                        help="training steps per fold and loss (160)")
    parser.add_argument("--learning-rate", type=positive(float), default=2e-3, help="(0.002)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write every figure here")
    args = parser.parse_args()
    factor = SIDE // args.size
    if factor * args.size != SIDE or factor & (factor - 1) or args.size % 2 ** args.depth:
        parser.error(f"--size {args.size}: {SIDE} divided by a power of 2, a multiple of "
                     f"2**depth ({2 ** args.depth})")
    if args.tile > args.size or args.tile % 2 ** args.depth:
        parser.error(f"--tile {args.tile}: at most --size ({args.size}), a multiple of 2**depth "
                     f"({2 ** args.depth})")
    if not 0 <= args.foreground <= 1:
        parser.error(f"--foreground {args.foreground}: a share in [0, 1]")

    started = datetime.datetime.now()
    folder = args.data_dir or dataset_dir("kidney_tumour_ct")
    every = sorted(set(datasets.patients(folder).values()))
    held_out = every if args.patients is None else [p.strip() for p in args.patients.split(",")]
    if unknown := sorted(set(held_out) - set(every)):
        parser.error(f"--patients: {', '.join(unknown)} not among {', '.join(every)}")
    rows, tick = [], time.perf_counter()
    for patient in held_out:
        for loss in args.losses:
            print(f"holding out patient {patient}, {loss} ...", file=sys.stderr, flush=True)
            rows.append(fold(args, folder, patient, loss, factor))
            print(f"  kidney {rows[-1]['kidney']:.4f}, tumour {rows[-1]['tumour']}",
                  file=sys.stderr, flush=True)
    minutes = (time.perf_counter() - tick) / 60
    summary = {}
    for loss in args.losses:
        kidney = [r["kidney"] for r in rows if r["loss"] == loss]
        tumour = [r["tumour"] for r in rows if r["loss"] == loss and r["tumour"] is not None]
        summary[loss] = dict(
            kidney_mean=float(np.mean(kidney)), kidney_sd=float(np.std(kidney)),
            tumour_mean=float(np.mean(tumour)) if tumour else None,
            tumour_sd=float(np.std(tumour)) if tumour else None, tumour_patients=len(tumour))

    command = "python benchmarks/kidney.py " + " ".join(sys.argv[1:])
    print(f"Kidney tumour CT (KiTS19, 24 slices of 5 patients), leave one patient out "
          f"({len(held_out)} folds x {len(args.losses)} losses): {args.size}x{args.size} input "
          f"(scored at {SIDE}x{SIDE}), {args.tile}x{args.tile} windows, foreground "
          f"{args.foreground:g}, depth {args.depth}, filters {args.filters} "
          f"({rows[0]['parameters']:,} weights), batch norm, batch {args.batch_size}, "
          f"{args.steps} steps per fold, Adam {args.learning_rate:g} cosine-decayed, no flips, "
          f"seed {args.seed}; {minutes:.1f} min in all\n")
    print(f"machine: {machine()} · date: {started:%Y-%m-%d} · command: `{command.strip()}`\n")
    print("| held-out patient | slices | kidney px | tumour px | "
          + " | ".join(f"{loss} kidney | {loss} tumour" for loss in args.losses) + " |")
    print("| --- | ---: | ---: | ---: | " + " | ".join("---: | ---:" for _ in args.losses) + " |")
    for patient in held_out:
        mine = {r["loss"]: r for r in rows if r["patient"] == patient}
        first = mine[args.losses[0]]
        cells = []
        for loss in args.losses:
            r = mine[loss]
            tumour = (f"{r['tumour']:.4f}" if r["tumour"] is not None
                      else f"— ({r['predicted_tumour_pixels']:,} px called tumour)")
            cells.append(f"{r['kidney']:.4f} | {tumour}")
        print(f"| {patient} | {first['slices']} | {first['kidney_pixels']:,} | "
              f"{first['tumour_pixels']:,} | " + " | ".join(cells) + " |")

    def shown(value):
        return "—" if value is None else f"{value:.4f}"

    print("| **mean** | | | | " + " | ".join(
        f"**{shown(s['kidney_mean'])}** | **{shown(s['tumour_mean'])}**"
        for s in summary.values()) + " |")
    print("| sd over patients | | | | " + " | ".join(
        f"{shown(s['kidney_sd'])} | {shown(s['tumour_sd'])}" for s in summary.values()) + " |")
    print("| target | | | | " + " | ".join("none | none" for _ in args.losses) + " |")
    print(f"\nNo target: {len(every)} patients are too few. The tumour mean is over the "
          f"{next(iter(summary.values()))['tumour_patients']} held-out patients with a tumour; "
          f"a difference between losses smaller than the spread between patients (and between "
          f"seeds) means nothing.")
    write_json(args, started, minutes=minutes, patients=held_out, target=None, summary=summary,
               folds=rows)


if __name__ == "__main__":
    main()
