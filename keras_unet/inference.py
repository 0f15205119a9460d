"""Segment images of any size with the paper's overlap-tile strategy (:func:`predict_tiled`):
the image is mirrored at its edges, each tile keeps the outputs beyond the reach of its zero
padding (:func:`keras_unet.model.padding_reach`; valid tiles abut, same ones are blended),
and tiles start on the ``2**depth`` pooling grid, so tiled is whole-image prediction."""

import contextlib
import os
from pathlib import Path

import numpy as np

from keras_unet.checks import check_choice, check_int, check_number, fail
from keras_unet.images import (as_image, as_prediction, image_files, locked, read_image,
                               writable_folder, write_atomically)
from keras_unet.model import output_size, padding_reach, unet_config, valid_input_sizes

BLENDS = ("gaussian", "uniform")
TTAS = {None: 1, "flips": 4, "d4": 8}
DEFAULT_TILE = {"valid": 572, "same": 512}  # the paper's tile; a round size
#: The file in an output folder that a run holds locked while it writes there.
LOCK_NAME = ".keras-unet.lock"


# --------------------------------------------------------------------- geometry


class _Plan:
    """How an image is cut, per axis: the input ``tile``; the outputs of each tile that
    are ``keep``-t (output coordinates); the ``step`` between tiles; where the image
    ``start``-s in the mirrored image; the image coordinate (``offset``) of the first
    tile's first kept output. ``image_size=None`` checks the tile against the model only."""

    def __init__(self, model, tile, overlap, image_size):
        channels, fixed = model.input_shape[-1], model.input_shape[1:3]
        config = dict(depth=None, padding=None, multilabel=False)  # another model: measured
        with contextlib.suppress(ValueError):
            config = unet_config(model)
        depth, padding, self.multilabel = config["depth"], config["padding"], config["multilabel"]
        self.channels, self.classes = channels, model.output_shape[-1]
        self.align = 2 ** (depth or 0)
        explicit = tile is not None
        if fixed[0] is not None or fixed[1] is not None:
            if explicit and (tile, tile) != tuple(fixed):
                raise ValueError(
                    f"tile {tile} differs from the model's fixed input {fixed}: leave tile=None, "
                    f"or build the model with input shape (None, None, {channels})")
            if fixed[0] != fixed[1]:
                raise ValueError(f"the model's input {fixed} is not square; tiles are square")
            tile, explicit = fixed[0], False
        elif tile is None:  # one tile size for every image: a model is traced once
            tile = DEFAULT_TILE[padding or "same"]
            tile = valid_input_sizes(tile, depth, padding)[-1] if depth else tile
        check_int(tile, "tile")
        if depth:
            try:
                out = output_size(tile, depth, padding)
            except ValueError as error:
                raise ValueError(f"tile {tile} does not fit the model: {error}") from None
        else:
            out = np.shape(model.predict_on_batch(np.zeros((1, tile, tile, channels))))[1]
            padding = "valid" if out < tile else "same"
        self.tile, self.valid, reach = tile, padding == "valid", 0
        with contextlib.suppress(ValueError):  # a layer it cannot follow: trust every output
            reach = padding_reach(model)  # bilinear up-sampling reaches in under valid padding
        kept = out - 2 * reach
        if kept < self.align:
            raise ValueError(f"tile {tile} is too small for this model: its zero padding reaches "
                             f"{reach} px into each side; use a tile >= "
                             f"{tile - kept + 4 * self.align}" if reach else f"tile {tile} is "
                             f"too small: its output {out} is less than 2**depth = {self.align} px")
        if self.valid:  # the tiles abut
            self.step = kept - kept % self.align
        else:
            self.step = max(self.align, int(kept * (1 - overlap)) // self.align * self.align)
        self.keep = (reach, reach + self.step if self.valid else out - reach)
        lead = -(-reach // self.align) * self.align  # >= reach, on the pooling grid
        self.start, self.offset = (tile - out) // 2 + lead, reach - lead
        kept = self.keep[1] - self.keep[0]
        if explicit and image_size is not None and max(image_size) < kept:
            fits = valid_input_sizes(max(image_size) + tile - kept, depth, padding) if depth else []
            smaller = [t for t in fits if t < tile][:1]
            raise ValueError(
                f"the image, {image_size[0]}x{image_size[1]}, is smaller than the {kept}x{kept} "
                f"outputs of tile {tile}: use a smaller tile"
                + (f" (e.g. {smaller[0]})" if smaller else "")
                + " or tile=None (the default tile, the image mirrored to fill it)")

    def axis(self, size):
        """(number of tiles, padding after the image) along an axis of ``size`` pixels."""
        kept = self.keep[1] - self.keep[0]
        n = max(1, -(-(size - self.offset - kept) // self.step) + 1)
        return n, (n - 1) * self.step + self.tile - size - self.start

    def corners(self, rows, cols):
        """The tiles' top-left corners in the mirrored image, in the order they are
        predicted; tile ``(r, c)``'s kept outputs start at image pixel ``(r, c) + offset``."""
        return [(r * self.step, c * self.step) for r in range(rows) for c in range(cols)]


def _weights(plan, blend):
    """Blending weights of a tile's kept outputs (their sum is divided out)."""
    low, high = plan.keep
    if plan.valid or blend == "uniform":
        return np.ones((high - low,) * 2, np.float32)
    centre, sigma = (high - low - 1) / 2, (high - low) / 8  # nnU-Net's sigma: 1/8 of the tile
    g = np.exp(-((np.arange(high - low) - centre) ** 2) / (2 * sigma**2))
    return np.maximum(np.outer(g, g), 1e-3).astype(np.float32)


def _tiling_options(overlap, blend, tta, batch_size):
    check_number(overlap, "overlap", 0, 1, open_high=True)
    check_choice(blend, BLENDS, "blend")
    check_choice(tta, tuple(TTAS), "tta")
    check_int(batch_size, "batch_size")


def tile_grid(model, image_shape, *, tile=None, overlap=0.25):
    """Where :func:`predict_tiled` puts each tile's kept outputs in an image (``image.shape``):
    int64 ``(n_tiles, 4)`` boxes ``(top, left, bottom, right)``, bottom and right exclusive,
    clipped to the image, in the order the tiles are predicted. Valid-padding boxes abut;
    same-padding ones overlap by about ``overlap``. Arguments as :func:`predict_tiled`'s.

    Example:
        >>> from keras_unet import build_unet
        >>> model = build_unet((None, None, 1), 2, depth=2, filters=4, padding="valid")
        >>> boxes = tile_grid(model, (300, 200), tile=124)  # 124 in, 84 out
        >>> len(boxes), boxes[:3].tolist(), boxes[-1].tolist()
        (12, [[0, 0, 84, 84], [0, 84, 84, 168], [0, 168, 84, 200]], [252, 168, 300, 200])
    """
    if not isinstance(image_shape, (tuple, list)) or len(image_shape) not in (2, 3) or not all(
            isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 1
            for n in image_shape):
        fail("image_shape", "(H, W) or (H, W, C) of positive integers", image_shape)
    _tiling_options(overlap, "gaussian", None, 1)
    height, width = int(image_shape[0]), int(image_shape[1])
    plan = _Plan(model, tile, overlap, (height, width))
    kept = plan.keep[1] - plan.keep[0]
    boxes = []
    for r, c in plan.corners(plan.axis(height)[0], plan.axis(width)[0]):
        top, left = r + plan.offset, c + plan.offset
        box = (max(top, 0), max(left, 0), min(top + kept, height), min(left + kept, width))
        if box[0] < box[2] and box[1] < box[3]:
            boxes.append(box)
    return np.array(boxes, np.int64).reshape(-1, 4)


def _tta_transforms(tta):
    """(forward, inverse) pairs on (N, H, W, C) batches: flips, and for d4 transposes."""
    pairs = [(lambda x, a=a: np.flip(x, a) if a else x,) * 2 for a in ((), (1,), (2,), (1, 2))]
    if tta == "d4":
        pairs += [(lambda x, f=f: np.swapaxes(f(x), 1, 2), lambda y, f=f: f(np.swapaxes(y, 1, 2)))
                  for f, _ in pairs]
    return pairs if tta else pairs[:1]


# ------------------------------------------------------------------- prediction


def predict_tiled(model, image, *, tile=None, overlap=0.25, blend="gaussian", tta=None,
                  batch_size=8, progress=True):
    """Per-pixel predictions for an image of any size, tile by tile.

    Args:
        model: a U-Net from :func:`keras_unet.build_unet`, or any Keras model from
            ``(N, H, W, C)`` images to ``(N, H', W', classes)`` scores.
        image: ``(H, W)`` or ``(H, W, C)``, any size, as :func:`keras_unet.images.as_image`
            takes it (uint8, uint16, or float in [0, 1]).
        tile: the input tile's side; ``None``: the model's fixed input size, else the
            paper's 572 (valid padding) or 512 (same). A same-padding tile keeps only its
            interior beyond ``padding_reach`` (94 px at depth 4): a 4096x4096 image takes
            7,225 tiles of 256 against 289 of 512.
        overlap: for same padding, the fraction by which neighbouring interiors overlap.
        blend: ``"gaussian"`` (centre pixels weigh most) or ``"uniform"``.
        tta: ``None``, ``"flips"`` (4 flips averaged) or ``"d4"`` (the 8 flips and
            rotations of the square).
        batch_size: tiles per model call.
        progress: show a progress bar over the tiles.

    Returns:
        float32 scores at the image's size: ``(H, W)`` for one output channel, else
        ``(H, W, classes)``. Raises ValueError for a bad image or argument, or a tile
        that does not fit the model, naming what works.

    Example:
        >>> from keras_unet import build_unet
        >>> model = build_unet((None, None, 1), 2, depth=2, filters=4, padding="valid")
        >>> predict_tiled(model, np.zeros((300, 200)), tile=124, progress=False).shape
        (300, 200, 2)
    """
    _tiling_options(overlap, blend, tta, batch_size)
    image = as_image(image, "image")
    height, width, channels = image.shape
    plan = _Plan(model, tile, overlap, (height, width))
    if channels != plan.channels:
        hint = (" (gray: image[..., :1]; RGB: np.repeat(image, 3, -1))"
                if plan.channels in (1, 3) else "")
        raise ValueError(f"the image has {channels} channels but the model takes "
                         f"{plan.channels}{hint}")
    (rows, pad_h), (cols, pad_w) = plan.axis(height), plan.axis(width)
    padded = np.pad(image, ((plan.start, pad_h), (plan.start, pad_w), (0, 0)), mode="reflect")
    scores = np.zeros((height, width, plan.classes), np.float32)
    total = np.zeros((height, width, 1), np.float32)
    weights, transforms = _weights(plan, blend)[..., None], _tta_transforms(tta)
    low, high = plan.keep
    corners = plan.corners(rows, cols)
    if progress:
        import keras

        bar = keras.utils.Progbar(len(corners), unit_name="tile")
    for first in range(0, len(corners), batch_size):
        batch = corners[first:first + batch_size]
        tiles = np.stack([padded[r:r + plan.tile, c:c + plan.tile] for r, c in batch])
        outputs = sum(inverse(np.asarray(model.predict_on_batch(forward(tiles)), np.float32))
                      for forward, inverse in transforms)
        outputs = outputs[:, low:high, low:high] / len(transforms)
        for (r, c), output in zip(batch, outputs):
            top, left = r + plan.offset, c + plan.offset  # image coordinates of the kept outputs
            y0, x0 = max(top, 0), max(left, 0)
            y1, x1 = min(top + high - low, height), min(left + high - low, width)
            if y0 < y1 and x0 < x1:
                part = (slice(y0 - top, y1 - top), slice(x0 - left, x1 - left))
                scores[y0:y1, x0:x1] += output[part] * weights[part]
                total[y0:y1, x0:x1] += weights[part]
        if progress:
            bar.update(min(first + batch_size, len(corners)))
    scores /= total
    return scores[..., 0] if plan.classes == 1 else scores


def mask_from_scores(scores, threshold=0.5, *, multilabel=False):
    """A mask image from :func:`predict_tiled`'s scores (by
    :func:`keras_unet.images.as_prediction`): uint8 0/255 for one channel (``scores >
    threshold``), the class indices for several, or with ``multilabel=True`` one 0/255
    channel per label (each thresholded).

    Example:
        >>> mask_from_scores(np.array([[0.2, 0.7]])).tolist()
        [[0, 255]]
        >>> mask_from_scores(np.array([[[0.1, 0.9], [0.8, 0.2]]])).tolist()
        [[1, 0]]
    """
    scores = np.asarray(scores)
    labels = as_prediction(scores, "scores", threshold=threshold,
                           mode="multilabel" if multilabel else None).labels
    if multilabel or scores.ndim == 2:
        labels = (labels * 255).astype(np.uint8)
        return labels if multilabel else labels[..., 0]
    return labels[..., 0].astype(np.uint8 if scores.shape[-1] <= 256 else np.uint16)


# ---------------------------------------------------------------------- folders


def _outputs(output_dir, stems, probabilities, suffix=".png"):
    """The files a run writes for images named ``stems``: masks, then probabilities."""
    paths = [output_dir / f"{stem}{suffix}" for stem in stems]
    return paths + ([output_dir / "probabilities" / f"{stem}.tif" for stem in stems]
                    if probabilities else [])


def _refuse_existing(output_dir, stems, probabilities, suffix=".png"):
    existing = [p for p in _outputs(output_dir, stems, probabilities, suffix)
                if os.path.lexists(p)]
    if existing:
        names = ", ".join(str(p.relative_to(output_dir)) for p in existing[:3])
        more = f" and {len(existing) - 3} more" if len(existing) > 3 else ""
        raise ValueError(
            f"output_dir {output_dir} already holds files this run would write ({names}{more}): "
            f"pass overwrite=True to replace them (a run again into the same folder needs it "
            f"too), or choose another output_dir")


def _lock_busy(output_dir):
    return ValueError(
        f"another prediction is writing to output_dir {output_dir} (it holds "
        f"{output_dir / LOCK_NAME}): wait until it is done, or choose another output_dir")


def check_output_dir(output_dir, names=(), *, probabilities=False, overwrite=False,
                     suffix=".png"):
    """Check, changing nothing, that a prediction run can write to ``output_dir``: a folder
    or a path where one can be made, in a folder that takes new files; no other run
    writing there; and unless ``overwrite=True``, none of the files it would write for
    the images ``names`` there (``<stem>.png``, ``probabilities/<stem>.tif``). Raises
    ValueError naming the folder, the problem and the fix.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> (folder / "a.png").write_bytes(b"the user's own")
        14
        >>> check_output_dir(folder, ["b.tif"])  # b.png: free
        >>> check_output_dir(folder, ["a.jpg"])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ValueError: output_dir ... already holds files this run would write (a.png): ...
    """
    output_dir = Path(output_dir)
    try:
        writable_folder(output_dir)
    except NotADirectoryError as error:
        existing = Path(error.filename)
        what = "is a file" if existing.is_file() else "is not a folder"
        where = what if existing == output_dir else f"cannot be made: {existing} {what}"
        raise ValueError(f"output_dir {output_dir} {where}: give a folder for the masks") from None
    except OSError as error:
        raise ValueError(
            f"cannot write to output_dir {output_dir}: {error.filename} takes no new files "
            f"({error.strerror}); give a folder where you can write") from None
    folder = output_dir / "probabilities"
    if probabilities and os.path.lexists(folder) and not folder.is_dir():
        raise ValueError(f"output_dir {output_dir} holds a file named probabilities where the "
                         f"probabilities' folder goes: move it, or choose another output_dir")
    if (output_dir / LOCK_NAME).is_file():
        try:
            with locked(output_dir / LOCK_NAME, wait=False):
                pass
        except BlockingIOError:
            raise _lock_busy(output_dir) from None
    if not overwrite:
        _refuse_existing(output_dir, [Path(n).stem for n in names], probabilities, suffix)


@contextlib.contextmanager
def _holding(output_dir):
    """``output_dir`` made and locked (``LOCK_NAME``) for one run; the lock file, and the
    folders made for the run if still empty, are removed when it ends."""
    made = [f for f in (output_dir, *output_dir.parents) if not os.path.lexists(f)]
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ValueError(f"cannot make output_dir {output_dir}: {error.strerror}") from None
    try:
        with contextlib.ExitStack() as stack:
            try:
                stack.enter_context(locked(output_dir / LOCK_NAME, wait=False, remove=True))
            except BlockingIOError:
                raise _lock_busy(output_dir) from None
            yield output_dir
    finally:
        for folder in made:  # deepest first; only empty ones go
            with contextlib.suppress(OSError):
                folder.rmdir()


def _predict_one(model, path, output_dir, threshold, probabilities, multilabel, tiled):
    """Segment one image file into ``output_dir`` (made and held by the caller): a PNG
    mask, or for a multilabel model a TIFF of one channel per label."""
    import tifffile
    from PIL import Image

    try:
        scores = predict_tiled(model, read_image(path), **tiled)
    except ValueError as error:
        message = str(error)
        raise ValueError(message if str(path) in message else f"{path}: {message}") from None
    mask = mask_from_scores(scores, threshold, multilabel=multilabel)
    target = output_dir / f"{path.stem}{'.tif' if multilabel else '.png'}"
    write_atomically(target, (lambda file: tifffile.imwrite(file, mask)) if multilabel
                     else lambda file: Image.fromarray(mask).save(file, format="PNG"))
    if probabilities:
        write_atomically(output_dir / "probabilities" / f"{path.stem}.tif",
                         lambda file: tifffile.imwrite(file, scores.astype(np.float32)))
    return target


def _predict_paths(model, paths, output_dir, *, threshold, probabilities, overwrite, progress,
                   **tiled):
    """Check all that can be checked before reading an image (arguments, the tile against
    the model, ``output_dir``), then predict ``paths`` into it, holding its lock."""
    output_dir = Path(output_dir)
    _tiling_options(tiled["overlap"], tiled["blend"], tiled["tta"], tiled["batch_size"])
    check_number(threshold, "threshold", 0, 1)
    multilabel = _Plan(model, tiled["tile"], tiled["overlap"], None).multilabel
    stems, suffix = [path.stem for path in paths], ".tif" if multilabel else ".png"
    check_output_dir(output_dir, stems, probabilities=probabilities, overwrite=overwrite,
                     suffix=suffix)
    written = []
    with _holding(output_dir):
        if not overwrite:  # again, now that no other run can write there
            _refuse_existing(output_dir, stems, probabilities, suffix)
        for number, path in enumerate(paths, start=1):
            if progress and len(paths) > 1:
                print(f"[{number}/{len(paths)}] {path.name}")
            try:
                written.append(_predict_one(model, path, output_dir, threshold, probabilities,
                                            multilabel, dict(tiled, progress=progress)))
            except (ValueError, OSError) as error:
                if len(paths) == 1:
                    raise
                stopped = (f"{error}. Stopped at {path.name}: {len(written)} of {len(paths)} "
                           f"masks were written to output_dir {output_dir}, the rest not "
                           f"predicted")
                raise (ValueError if isinstance(error, ValueError) else OSError)(stopped) from None
    return written


def predict_folder(model, input_dir, output_dir, *, threshold=0.5, probabilities=False,
                   tile=None, overlap=0.25, blend="gaussian", tta=None, batch_size=8,
                   overwrite=False, progress=True):
    """Segment every image of a folder with :func:`predict_tiled` and write each mask under
    the image's name: ``<name>.png`` (0/255 for a binary model, class indices for a
    multi-class one; ``<name>.tif`` of one 0/255 channel per label for a multilabel one),
    with ``probabilities=True`` also the float32 scores, ``probabilities/<name>.tif``.
    Files are written whole or not at all, as a plain ``open()`` makes them.

    All is checked before any image is read (:func:`check_output_dir`): existing files
    are replaced only with ``overwrite=True``; a run holds ``output_dir/.keras-unet.lock``
    so that a second one into the folder is refused. Returns the masks' paths, in the
    order of the image names; a ValueError names the problem (for an image, the file and
    how many masks were written before it).

    Example:
        >>> import tempfile
        >>> from PIL import Image
        >>> from keras_unet import build_unet
        >>> folder = Path(tempfile.mkdtemp())
        >>> (folder / "in").mkdir()
        >>> Image.fromarray(np.zeros((50, 70), np.uint8)).save(folder / "in" / "cells.png")
        >>> model = build_unet((None, None, 1), 1, depth=2, filters=4)
        >>> [p.name for p in predict_folder(model, folder / "in", folder / "out", progress=False)]
        ['cells.png']
    """
    files = image_files(input_dir, "input_dir")
    return _predict_paths(model, list(files.values()), output_dir, threshold=threshold,
                          probabilities=probabilities, overwrite=overwrite, progress=progress,
                          tile=tile, overlap=overlap, blend=blend, tta=tta,
                          batch_size=batch_size)


def predict_file(model, path, output_dir, *, threshold=0.5, probabilities=False, tile=None,
                 overlap=0.25, blend="gaussian", tta=None, batch_size=8, overwrite=False,
                 progress=True):
    """Segment one image file into ``output_dir`` as :func:`predict_folder` does, with the
    same checks, and return the mask's path."""
    (written,) = _predict_paths(model, [Path(path)], output_dir, threshold=threshold,
                                probabilities=probabilities, overwrite=overwrite,
                                progress=progress, tile=tile, overlap=overlap, blend=blend,
                                tta=tta, batch_size=batch_size)
    return written
