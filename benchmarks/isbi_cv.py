"""5-fold cross-validation on the 30 ISBI 2012 training slices, with the paper's recipe,
and the time-to-accuracy curve of the CPU-budget mode.

    python benchmarks/isbi_cv.py --data-dir ../shared/data/isbi2012_em        # CPU budget: 10 min a fold, 52 in all
    python benchmarks/isbi_cv.py --data-dir ../shared/data/isbi2012_em --mode full   # on a GPU
    python benchmarks/isbi_cv.py --data-dir ../shared/data/isbi2012_em --folds 0 --minutes 2  # a check

The recipe (Ronneberger et al. 2015): valid padding, the border weight map
(``w0=10, sigma=5``) in a pixel-weighted cross-entropy, the package's default augmentation
(flips, rotations, scaling and the paper's elastic deformation), and overlap-tile
prediction of each held-out slice whole. Two departures, both for speed: batch
normalisation and Adam (the paper: no normalisation, SGD with momentum 0.99).

``--no-weight-map`` and ``--loss dice_ce`` change the recipe, to see what each part is
worth; ``--filters`` and ``--tile`` the network.

Folds are five contiguous blocks of six slices (0-5, 6-11, ...): the slices are
neighbours in one EM volume, so a random split would score a slice next to its twin.

Modes:

* ``budget`` (default): depth 4, filters 16, 444x444 tiles (260x260 out), batch 2,
  trained for ``--minutes`` (10) of wall-clock time a fold, measured around the
  training epochs only. Every ``--every`` minutes (1) the held-out slices are predicted
  and their membrane Dice recorded: the time-to-accuracy curve (``--plot``).
* ``full``: the paper's network (filters 64), 572x572 tiles (388 out), batch 4, 60 epochs
  of 100 steps, no time limit: hours on a GPU, days on a CPU.

Per fold and in the mean: the ISBI challenge's V_rand and V_info (after border
thinning, best of eleven thresholds, :func:`keras_unet.evaluation.isbi_scores`), its pixel
error (best threshold), and the Dice of the cell interior (the foreground, mask 1) and
of the membranes (mask 0) at the argmax. Targets: pixel error <= 0.061 (the paper's
test score), foreground Dice >= 0.90 (NVIDIA's UNet_Medical reports 0.890 on this
protocol), V_rand >= 0.97; membrane Dice >= 0.80 within 10 minutes of CPU training.

Prints Markdown tables with the machine and the date; ``--json`` keeps every figure.
"""

import argparse
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_unet import (build_unet, datasets, evaluation, inference, receptive_border,  # noqa: E402
                        valid_input_sizes)
from keras_unet.data import make_dataset  # noqa: E402
from keras_unet.training import compile_unet  # noqa: E402
from keras_unet.tutorial import dataset_dir, machine  # noqa: E402
from keras_unet.weights import border_weight_map  # noqa: E402

MODES = {
    "budget": dict(filters=16, tile=444, batch_size=2, minutes=10.0, epochs=None,
                   steps_per_epoch=20),
    "full": dict(filters=64, tile=572, batch_size=4, minutes=None, epochs=60,
                 steps_per_epoch=100),
}
DEPTH, W0, SIGMA, LEARNING_RATE = 4, 10.0, 5.0, 1e-3
TARGETS = {"pixel_error": ("<=", 0.061), "dice_cell": (">=", 0.90), "V_rand": (">=", 0.97)}
TIME_TARGET = (10.0, 0.80)  # membrane Dice >= 0.80 within 10 minutes


class Clock(keras.callbacks.Callback):
    """Counts the time spent in training epochs; every ``every`` minutes of it, scores the
    held-out slices (time not counted); stops once ``minutes`` are spent. ``curve`` holds
    (minutes, score) and ``scored_epoch`` the epoch last scored."""

    def __init__(self, score, every, minutes=None):
        super().__init__()
        self.score, self.every, self.minutes = score, every * 60, minutes and minutes * 60
        self.trained, self.next_score, self.curve, self.scored_epoch = 0.0, self.every, [], None

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.trained += time.perf_counter() - self.started
        spent = self.minutes is not None and self.trained >= self.minutes
        if self.trained >= self.next_score or spent:
            self.record(epoch, logs["loss"])
            while self.next_score <= self.trained:
                self.next_score += self.every
        if spent:
            self.model.stop_training = True

    def record(self, epoch, loss):
        dice = self.score()
        self.curve.append((self.trained / 60, dice))
        self.scored_epoch = epoch
        print(f"    {self.trained / 60:5.1f} min, epoch {epoch + 1}: loss {loss:.4f}, "
              f"held-out membrane Dice {dice:.3f}", file=sys.stderr, flush=True)


def folds(n, k):
    """k contiguous blocks of slice indices: (train, held_out) pairs."""
    blocks = np.array_split(np.arange(n), k)
    return [(np.setdiff1d(np.arange(n), block), block) for block in blocks]


def run_fold(fold, train_idx, held_idx, images, masks, pixel_weights, settings, every, seed):
    keras.utils.set_random_seed(seed + fold)
    tile, border = settings["tile"], receptive_border(DEPTH)
    model = build_unet((None, None, 1), 2, depth=DEPTH, filters=settings["filters"],
                       padding="valid", batch_norm=True)
    compile_unet(model, loss=settings["loss"], learning_rate=LEARNING_RATE, metrics=[])
    fit_weights = None if pixel_weights is None else pixel_weights[train_idx]
    dataset = make_dataset(images[train_idx], masks[train_idx], weights=fit_weights,
                           batch_size=settings["batch_size"], tile=tile, output_crop=border,
                           augment=True, seed=seed + fold)
    truth = masks[held_idx, ..., 0]

    predicted = {}

    def membrane_dice():  # keeps the prediction: the last one is the fold's result
        predicted["probabilities"] = np.stack([
            inference.predict_tiled(model, image, tile=tile, progress=False)
            for image in images[held_idx]])
        return float(evaluation.dice(truth, predicted["probabilities"],
                                     n_classes=2)["per_class"][0])

    clock = Clock(membrane_dice, every, settings["minutes"])
    epochs = settings["epochs"] or 10**6  # the clock stops a budget run
    model.fit(dataset, epochs=epochs, steps_per_epoch=settings["steps_per_epoch"],
              callbacks=[clock], shuffle=False, verbose=0)  # make_dataset shuffles
    last_epoch = len(model.history.epoch) - 1
    if clock.scored_epoch != last_epoch:  # a full run's end falls between scorings
        clock.record(last_epoch, model.history.history["loss"][-1])
    probabilities = predicted["probabilities"]
    scores = evaluation.isbi_scores(probabilities[..., 1], truth)
    dice = evaluation.dice(truth, probabilities, n_classes=2)["per_class"]
    result = {
        "fold": fold, "held_out": [int(i) for i in held_idx],
        "V_rand": float(scores["V_rand"]), "V_info": float(scores["V_info"]),
        "pixel_error": float(scores["pixel_error"]),
        "dice_cell": float(dice[1]), "dice_membrane": float(dice[0]),
        "minutes": clock.trained / 60, "epochs": last_epoch + 1,
        "steps": (last_epoch + 1) * settings["steps_per_epoch"],
        "curve": clock.curve, "parameters": model.count_params(),
    }
    return result


def met(value, rule):
    op, target = rule
    return value <= target if op == "<=" else value >= target


def report(args, settings, results, started):
    names = ["pixel_error", "V_rand", "V_info", "dice_cell", "dice_membrane"]
    labels = ["ISBI pixel error", "V_rand", "V_info", "Dice, cell (foreground)", "Dice, membrane"]
    command = "python benchmarks/isbi_cv.py " + " ".join(sys.argv[1:])
    print(f"ISBI 2012, {len(results)} of {args.k} folds of six contiguous slices, mode "
          f"{args.mode}: depth {DEPTH}, filters {settings['filters']}, valid padding, "
          f"tile {settings['tile']}, batch {settings['batch_size']}, batch norm, Adam "
          f"{LEARNING_RATE:g}, {settings['loss'].replace('_', ' ')}"
          + (f" weighted by the border weight map (w0 {W0:g}, sigma {SIGMA:g})"
             if settings["weight_map"] else " without the weight map") + ", elastic "
          f"augmentation, overlap-tile prediction; "
          + (f"{settings['minutes']:g} min of training a fold"
             if settings["minutes"] else f"{settings['epochs']} epochs of "
             f"{settings['steps_per_epoch']} steps") + "\n")
    print(f"machine: {machine()} · date: {started:%Y-%m-%d} · command: `{command.strip()}`\n")
    print("| fold | held-out slices | training | " + " | ".join(labels) + " |")
    print("| --- | --- | --- |" + " ---: |" * len(names))
    for r in results:
        held = f"{r['held_out'][0]}-{r['held_out'][-1]}"
        print(f"| {r['fold']} | {held} | {r['minutes']:.1f} min, {r['steps']} steps | "
              + " | ".join(f"{r[name]:.4f}" for name in names) + " |")
    means = {name: float(np.mean([r[name] for r in results])) for name in names}
    print("| **mean** | | | " + " | ".join(f"**{means[name]:.4f}**" for name in names) + " |")
    cells = []
    for name in names:
        rule = TARGETS.get(name)
        cells.append(f"{rule[0]} {rule[1]:g}: {'met' if met(means[name], rule) else 'missed'}"
                     if rule else "")
    print("| target | | | " + " | ".join(cells) + " |")
    if settings["minutes"]:
        minutes, goal = TIME_TARGET
        minutes = min(minutes, settings["minutes"])
        reached = [next((t for t, d in r["curve"] if d >= goal), None) for r in results]
        at_target = np.mean([dice_at(r["curve"], minutes) for r in results])
        verdict = "met" if at_target >= goal else "missed"
        print(f"\nTime to accuracy: held-out membrane Dice {goal:g} reached after "
              + ", ".join("never" if t is None else f"{t:.1f} min" for t in reached)
              + f" (folds in order); after {minutes:g} min: mean {at_target:.3f} (target "
              f">= {goal:g} within {TIME_TARGET[0]:g} min: {verdict}).")
    return means


def dice_at(curve, minutes):
    """The last membrane Dice scored at or before ``minutes``."""
    scored = [d for t, d in curve if t <= minutes + 1e-6]
    return scored[-1] if scored else float("nan")


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2), layout="constrained")
    for r in results:
        t, d = zip(*r["curve"])
        ax.plot(t, d, marker=".", lw=1, alpha=0.6, label=f"fold {r['fold']}")
    scores = min(len(r["curve"]) for r in results)  # the k-th scoring of every fold
    mean = np.mean([[point for point in r["curve"][:scores]] for r in results], axis=0)
    ax.plot(mean[:, 0], mean[:, 1], color="black", lw=2.5, label="mean of the folds")
    minutes, goal = TIME_TARGET
    ax.axhline(goal, color="tab:red", ls="--", lw=1)
    ax.axvline(minutes, color="tab:red", ls=":", lw=1)
    ax.annotate(f"target: {goal:g} within {minutes:g} min", (0.02, goal), color="tab:red",
                xycoords=("axes fraction", "data"), va="bottom", fontsize=9)
    ax.set_xlabel("minutes of training (wall clock, 2-core CPU)" if "CPU" in machine()
                  else "minutes of training")
    ax.set_ylabel("held-out membrane Dice")
    ax.set_title("ISBI 2012, 5-fold cross-validation: membrane Dice against training time",
                 fontsize=10)
    low = min(d for r in results for _, d in r["curve"])
    ax.set_ylim(min(0.5, np.floor(low * 10) / 10), 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    print(f"\nplot written to {path}", file=sys.stderr)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path,
                        help="the ISBI 2012 folder (default: $KERAS_UNET_DATA_DIR/isbi2012_em, "
                             "else the cache, downloaded once)")
    parser.add_argument("--mode", choices=MODES, default="budget")
    parser.add_argument("--minutes", type=float, help="training minutes a fold (budget mode: 10)")
    parser.add_argument("--filters", type=int, help="first-level filters (budget 16, full 64)")
    parser.add_argument("--tile", type=int, help="training tile side (budget 444, full 572)")
    parser.add_argument("--loss", choices=("cross_entropy", "dice_ce"), default="cross_entropy",
                        help="cross_entropy (the paper's), or cross-entropy + Dice")
    parser.add_argument("--no-weight-map", action="store_true",
                        help="train without the paper's border weight map")
    parser.add_argument("--every", type=float, default=1.0,
                        help="score the held-out slices every this many training minutes (1)")
    parser.add_argument("--folds", help="comma-separated fold numbers to run (default: all)")
    parser.add_argument("-k", type=int, default=5, help="number of folds (5)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write every figure here")
    parser.add_argument("--plot", type=Path, help="write the time-to-accuracy plot here (PNG)")
    args = parser.parse_args()
    settings = dict(MODES[args.mode], loss=args.loss, weight_map=not args.no_weight_map)
    if args.minutes is not None:
        if args.minutes <= 0:
            parser.error(f"--minutes must be > 0; got {args.minutes}")
        settings["minutes"] = args.minutes
    for name in ("filters", "tile"):
        value = getattr(args, name)
        if value is not None:
            if value <= 0:
                parser.error(f"--{name} must be > 0; got {value}")
            settings[name] = value
    if settings["tile"] not in valid_input_sizes(settings["tile"], DEPTH):
        parser.error(f"--tile {settings['tile']} does not fit a valid-padding U-Net of depth "
                     f"{DEPTH}; the nearest that do: {valid_input_sizes(settings['tile'], DEPTH)}")
    if args.every <= 0:
        parser.error(f"--every must be > 0; got {args.every}")
    all_folds = folds(30, args.k)
    chosen = range(args.k)
    if args.folds:
        try:
            chosen = [int(f) for f in args.folds.split(",")]
        except ValueError:
            parser.error(f"--folds must be fold numbers separated by commas; got {args.folds!r}")
        if not all(0 <= f < args.k for f in chosen):
            parser.error(f"--folds must be between 0 and {args.k - 1}; got {args.folds!r}")

    started = datetime.datetime.now()
    data_dir = args.data_dir or dataset_dir("isbi2012")
    train, _ = datasets.load_isbi2012(data_dir)
    images, masks = train.images, train.masks.astype("int32")
    if len(images) != 30:
        sys.exit(f"expected the 30 ISBI 2012 training slices in {data_dir}; found {len(images)}")
    pixel_weights = None
    if settings["weight_map"]:
        print("border weight maps ...", file=sys.stderr, flush=True)
        pixel_weights = np.stack([border_weight_map(m, w0=W0, sigma=SIGMA)
                                  for m in masks[..., 0]])
    results = []
    for fold in chosen:
        train_idx, held_idx = all_folds[fold]
        print(f"fold {fold}: held-out slices {held_idx[0]}-{held_idx[-1]}", file=sys.stderr,
              flush=True)
        results.append(run_fold(fold, train_idx, held_idx, images, masks, pixel_weights,
                                settings, args.every, args.seed))
        r = results[-1]
        print(f"  V_rand {r['V_rand']:.4f}, V_info {r['V_info']:.4f}, pixel error "
              f"{r['pixel_error']:.4f}, Dice cell {r['dice_cell']:.4f}, membrane "
              f"{r['dice_membrane']:.4f}", file=sys.stderr, flush=True)
        if args.json:
            args.json.write_text(json.dumps(
                {"mode": args.mode, "settings": settings, "machine": machine(),
                 "date": f"{started:%Y-%m-%d}", "platform": platform.platform(),
                 "folds": results}, indent=1))
    report(args, settings, results, started)
    if args.plot and settings["minutes"]:
        plot(results, args.plot)


if __name__ == "__main__":
    main()
