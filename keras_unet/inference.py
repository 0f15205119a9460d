"""Segment images of any size: the paper's overlap-tile strategy.

A U-Net sees a fixed tile. :func:`predict_tiled` cuts an image of any size into tiles,
runs them through the model in batches, and puts the outputs back together:

* **valid padding** (the paper): the image is mirrored outward by the border the
  convolutions consume, so that every output pixel has its full context, and the
  output tiles are laid edge to edge; nothing is blended. The result equals one pass
  of the whole mirrored image through the model.
* **same padding**: each tile's outputs near its edges see the convolutions' zero
  padding, so only its interior is kept (a band as wide as the model's receptive
  border is dropped); neighbouring interiors overlap by ``overlap`` and are blended
  with a Gaussian (or uniform) weight. The image is mirrored at its edges.

Tiles start at multiples of ``2**depth`` pixels, so the max-pooling grid of every tile
is the grid of the whole image: away from the image's edges, tiled prediction is the
whole-image prediction, to float error.

:func:`tile_grid` returns where each tile's outputs land in the image (to draw them,
:func:`keras_unet.viz.show_tiles`).

Memory stays O(image + output + batch x tile): tiles are cut and predicted one batch at
a time. Test-time augmentation (``tta="flips"`` or ``"d4"``) averages the predictions
of flipped and rotated tiles. Only NumPy and the model's ``predict_on_batch`` are used,
so it works on every Keras backend.
"""

import contextlib
import os
import re
from pathlib import Path

import numpy as np

from keras_unet.images import image_files, locked, read_image, to_float_image, writable_folder, write_atomically
from keras_unet.model import output_size, receptive_border, valid_input_sizes

BLENDS = ("gaussian", "uniform")
TTAS = {None: 1, "flips": 4, "d4": 8}
DEFAULT_TILE = {"valid": 572, "same": 512}  # the paper's tile; a round size
#: The file in an output folder that a run holds locked while it writes there.
LOCK_NAME = ".keras-unet.lock"


# --------------------------------------------------------------------- geometry


def _unet_config(model):
    """(depth, padding, upsampling) of a build_unet model, read from its layer names,
    or (None, None, None) for another model."""
    names = [layer.name for layer in model.layers]
    depth = sum(bool(re.fullmatch(r"enc\d+_pool", n)) for n in names)
    if not depth:
        return None, None, None
    padding = "valid" if any(re.fullmatch(r"dec\d+_crop", n) for n in names) else "same"
    bilinear = any(re.fullmatch(r"dec\d+_upsample", n) for n in names)
    return depth, padding, "bilinear" if bilinear else "transpose"


def _padding_reach(depth, upsampling):
    """How far (pixels) the zero padding at a tile's edge changes a same-padding
    U-Net's output. Measured: receptive_border + 2 with transposed up-convolutions,
    up to receptive_border + 15 (depth 3) with bilinear up-sampling; this bound holds
    for both with a margin."""
    return receptive_border(depth) + 2**depth * (2 if upsampling == "bilinear" else 1)


class _Plan:
    """How an image is cut, per axis: the input ``tile``; the outputs of each tile
    that are ``keep``-t (output coordinates); the ``step`` between tiles; where the
    image ``start``-s in the mirrored image; the image coordinate (``offset``) of the
    first tile's first kept output. ``image_size=None`` checks the tile against the
    model only (before any image is read)."""

    def __init__(self, model, tile, overlap, image_size):
        channels, fixed = model.input_shape[-1], model.input_shape[1:3]
        depth, padding, upsampling = _unet_config(model)
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
        if isinstance(tile, bool) or not isinstance(tile, int) or tile < 1:
            raise ValueError(f"tile must be a positive integer or None; got {tile!r}")
        if depth:
            try:
                out = output_size(tile, depth, padding)
            except ValueError as error:
                raise ValueError(f"tile {tile} does not fit the model: {error}") from None
        else:  # not a build_unet model: measure its output on one tile
            probe = model.predict_on_batch(np.zeros((1, tile, tile, channels), np.float32))
            out = np.shape(probe)[1]
            padding = "valid" if out < tile else "same"
        self.tile, self.valid = tile, padding == "valid"
        if self.valid:
            border = (tile - out) // 2
            self.keep = (0, out - out % self.align)
            self.step, self.start, self.offset = self.keep[1], border, 0
        else:
            border = _padding_reach(depth, upsampling) if depth else 0
            interior = tile - 2 * border
            if interior < self.align:
                raise ValueError(
                    f"tile {tile} is too small for this model: its zero padding reaches "
                    f"{border} px into each side; use a tile >= {2 * border + 4 * self.align}")
            self.keep = (border, tile - border)
            self.step = max(self.align, int(interior * (1 - overlap)) // self.align * self.align)
            self.start = -(-border // self.align) * self.align  # >= border, aligned
            self.offset = border - self.start
        kept = self.keep[1] - self.keep[0]
        if kept < 1:
            raise ValueError(f"tile {tile} is too small: its output {out} is less than "
                             f"2**depth = {self.align} pixels")
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


def _weights(plan, blend):
    """Blending weights of a tile's kept outputs (their sum is divided out)."""
    low, high = plan.keep
    if plan.valid or blend == "uniform":
        return np.ones((high - low,) * 2, np.float32)
    centre, sigma = (high - low - 1) / 2, (high - low) / 8  # nnU-Net's sigma: 1/8 of the tile
    g = np.exp(-((np.arange(high - low) - centre) ** 2) / (2 * sigma**2))
    return np.maximum(np.outer(g, g), 1e-3).astype(np.float32)


def _corners(plan, rows, cols):
    """The tiles' top-left corners in the mirrored image, row by row (the order in
    which they are predicted). The kept outputs of the tile at ``(r, c)`` start at
    image pixel ``(r + plan.offset, c + plan.offset)``."""
    return [(r * plan.step, c * plan.step) for r in range(rows) for c in range(cols)]


def tile_grid(model, image_shape, *, tile=None, overlap=0.25):
    """Where :func:`predict_tiled` puts each tile's output in an image: one box per tile.

    With valid padding (the paper) the boxes abut: every pixel of the image is
    predicted by exactly one tile, with its full context taken from the mirrored
    image. With same padding they overlap by about ``overlap`` and are blended. The
    boxes start at image pixel 0 and follow each other by the same step, a multiple of
    ``2**depth`` (the pooling grid); the last row and column are clipped to the image.

    Args:
        model, tile, overlap: as for :func:`predict_tiled`.
        image_shape: the image's ``(H, W)`` or ``(H, W, C)`` (``image.shape``).

    Returns:
        int64 ``(n_tiles, 4)``: ``(top, left, bottom, right)`` of each tile's kept
        outputs in image pixels (bottom and right exclusive), clipped to the image,
        row by row in the order the tiles are predicted.

    Raises:
        ValueError: as :func:`predict_tiled` does for a tile that does not fit.

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
        raise ValueError(f"image_shape must be (H, W) or (H, W, C) of positive integers; "
                         f"got {image_shape!r}")
    _check_arguments(overlap, "gaussian", None, 1)
    height, width = int(image_shape[0]), int(image_shape[1])
    plan = _Plan(model, tile, overlap, (height, width))
    (rows, _), (cols, _) = plan.axis(height), plan.axis(width)
    kept = plan.keep[1] - plan.keep[0]
    boxes = []
    for r, c in _corners(plan, rows, cols):
        top, left = r + plan.offset, c + plan.offset
        box = (max(top, 0), max(left, 0), min(top + kept, height), min(left + kept, width))
        if box[0] < box[2] and box[1] < box[3]:
            boxes.append(box)
    return np.array(boxes, np.int64).reshape(-1, 4)


# ------------------------------------------------------------ test-time augmentation


def _tta_transforms(tta):
    """(forward, inverse) pairs on (N, H, W, C) batches: flips, and for d4 transposes."""
    flips = [(a, a) for a in ((), (1,), (2,), (1, 2))]
    pairs = [(lambda x, a=a: np.flip(x, a) if a else x,) * 2 for a, _ in flips]
    if tta == "d4":
        def transposed(a):
            return (lambda x: np.swapaxes(np.flip(x, a) if a else x, 1, 2),
                    lambda y: np.flip(np.swapaxes(y, 1, 2), a) if a else np.swapaxes(y, 1, 2))
        pairs += [transposed(a) for a, _ in flips]
    return pairs if tta else pairs[:1]


# ------------------------------------------------------------------- prediction


def _check_arguments(overlap, blend, tta, batch_size):
    if isinstance(overlap, bool) or not isinstance(overlap, (int, float)) or not 0 <= overlap < 1:
        raise ValueError(f"overlap must be a fraction in [0, 1); got {overlap!r}")
    if blend not in BLENDS:
        raise ValueError(f"blend must be one of {', '.join(map(repr, BLENDS))}; got {blend!r}")
    if tta not in TTAS:
        raise ValueError(f"tta must be None, 'flips' or 'd4'; got {tta!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")


def predict_tiled(model, image, *, tile=None, overlap=0.25, blend="gaussian", tta=None,
                  batch_size=8, progress=True):
    """Per-pixel predictions for an image of any size, tile by tile.

    Args:
        model: a U-Net from :func:`keras_unet.build_unet` (valid or same padding, any
            depth, fixed or ``None`` input size), or any Keras model from ``(N, H, W,
            C)`` images to ``(N, H', W', classes)`` scores.
        image: ``(H, W)`` or ``(H, W, C)``, any size; uint8, uint16 or float in [0, 1]
            (the package's image convention, as in training).
        tile: the input tile's side. ``None``: the model's fixed input size, else the
            paper's 572 (valid padding) or 512 (same), or less for a small image. A
            size the model cannot take is an error naming the sizes it can. A
            same-padding tile keeps only its interior, beyond the reach of its zero
            padding (about ``receptive_border + 2**depth`` pixels a side), so a small
            tile wastes most of its work: at depth 4, tile 256 keeps 36 pixels and a
            4096x4096 image takes 65,025 tiles against 400 of tile 512.
        overlap: for same-padding models, the fraction by which neighbouring tiles'
            trusted interiors overlap (blended). Valid-padding tiles always abut.
        blend: ``"gaussian"`` (centre pixels weigh most) or ``"uniform"``.
        tta: ``None``, ``"flips"`` (4 flips averaged) or ``"d4"`` (the 8 flips and
            rotations of the square).
        batch_size: tiles per model call.
        progress: show a progress bar over the tiles.

    Returns:
        float32 predictions at the image's size: ``(H, W)`` for one output channel (a
        binary model's foreground probability), ``(H, W, classes)`` otherwise.

    Raises:
        ValueError: for NaN pixels, a channel count the model does not take, a tile
            that does not fit the model, an explicit tile larger than a same-padding
            model's mirrored image needs, or a bad argument, naming it and what works.

    Example:
        >>> from keras_unet import build_unet
        >>> model = build_unet((None, None, 1), 2, depth=2, filters=4, padding="valid")
        >>> probabilities = predict_tiled(model, np.zeros((300, 200)), tile=124,
        ...                               progress=False)
        >>> probabilities.shape
        (300, 200, 2)
    """
    _check_arguments(overlap, blend, tta, batch_size)
    image = to_float_image(image, "image")
    height, width, channels = image.shape
    plan = _Plan(model, tile, overlap, (height, width))
    if channels != plan.channels:
        hint = " (gray: image[..., :1]; RGB: np.repeat(image, 3, -1))" if plan.channels in (1, 3) else ""
        raise ValueError(f"the image has {channels} channels but the model takes "
                         f"{plan.channels}{hint}")
    (rows, pad_h), (cols, pad_w) = plan.axis(height), plan.axis(width)
    padded = np.pad(image, ((plan.start, pad_h), (plan.start, pad_w), (0, 0)), mode="reflect")
    scores = np.zeros((height, width, plan.classes), np.float32)
    total = np.zeros((height, width, 1), np.float32)
    weights = _weights(plan, blend)[..., None]
    transforms = _tta_transforms(tta)
    low, high = plan.keep
    corners = _corners(plan, rows, cols)
    bar = None
    if progress:
        import keras

        bar = keras.utils.Progbar(len(corners), unit_name="tile")
    for first in range(0, len(corners), batch_size):
        batch = corners[first:first + batch_size]
        tiles = np.stack([padded[r:r + plan.tile, c:c + plan.tile] for r, c in batch])
        outputs = 0
        for forward, inverse in transforms:
            outputs = outputs + inverse(np.asarray(model.predict_on_batch(forward(tiles)),
                                                   np.float32))
        outputs = outputs[:, low:high, low:high] / len(transforms)
        for (r, c), output in zip(batch, outputs):
            top, left = r + plan.offset, c + plan.offset  # image coordinates of the kept outputs
            y0, x0 = max(top, 0), max(left, 0)
            y1, x1 = min(top + high - low, height), min(left + high - low, width)
            if y0 >= y1 or x0 >= x1:
                continue
            part = (slice(y0 - top, y1 - top), slice(x0 - left, x1 - left))
            scores[y0:y1, x0:x1] += output[part] * weights[part]
            total[y0:y1, x0:x1] += weights[part]
        if bar is not None:
            bar.update(min(first + batch_size, len(corners)))
    scores /= total
    return scores[..., 0] if plan.classes == 1 else scores


# ---------------------------------------------------------------------- folders


def mask_from_scores(scores, threshold=0.5):
    """A mask image from :func:`predict_tiled`'s output: uint8 0/255 for one channel
    (``scores > threshold``), class indices (the arg-max) for several.

    Example:
        >>> mask_from_scores(np.array([[0.2, 0.7]])).tolist()
        [[0, 255]]
        >>> mask_from_scores(np.array([[[0.1, 0.9], [0.8, 0.2]]])).tolist()
        [[1, 0]]
    """
    if scores.ndim == 2:
        return np.where(scores > threshold, 255, 0).astype(np.uint8)
    return scores.argmax(-1).astype(np.uint8 if scores.shape[-1] <= 256 else np.uint16)


def _check_threshold(threshold):
    if (isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.floating))
            or not 0 <= threshold <= 1):  # NaN fails both comparisons
        raise ValueError(f"threshold must be a number in [0, 1]; got {threshold!r}")


def _outputs(output_dir, stems, probabilities):
    """The files a run writes for images named ``stems``: masks, then probabilities."""
    paths = [output_dir / f"{stem}.png" for stem in stems]
    if probabilities:
        paths += [output_dir / "probabilities" / f"{stem}.tif" for stem in stems]
    return paths


def _refuse_existing(output_dir, stems, probabilities):
    existing = [p for p in _outputs(output_dir, stems, probabilities) if os.path.lexists(p)]
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


def check_output_dir(output_dir, names=(), *, probabilities=False, overwrite=False):
    """Check that a prediction run can write to ``output_dir``, changing nothing there:
    what :func:`predict_folder` and :func:`predict_file` check before they read any
    image.

    ``output_dir`` must be a folder, or a path where one can be made; the first folder
    that exists on the way to it must take new files (a probe folder is made in it and
    removed); no other run may be writing there; and unless ``overwrite=True``, none of
    the files the run would write for the images ``names`` (file names or stems) may
    exist: ``<stem>.png``, and with ``probabilities=True``
    ``probabilities/<stem>.tif``. Running again into the same folder therefore needs
    ``overwrite=True``.

    Raises:
        ValueError: naming the folder, the problem and the fix (the first files that
            exist and ``overwrite=True``).

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> (folder / "a.png").write_bytes(b"the user's own")
        14
        >>> check_output_dir(folder, ["b.tif"])  # b.png: free
        >>> check_output_dir(folder, ["a.jpg"])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ValueError: output_dir ... already holds files this run would write (a.png): pass overwrite=True ...
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
    if probabilities and os.path.lexists(output_dir / "probabilities") and not (
            output_dir / "probabilities").is_dir():
        raise ValueError(f"output_dir {output_dir} holds a file named probabilities where "
                         f"the probabilities' folder goes: move it, or choose another "
                         f"output_dir")
    lock = output_dir / LOCK_NAME
    if lock.is_file():
        try:
            with locked(lock, wait=False):
                pass
        except BlockingIOError:
            raise _lock_busy(output_dir) from None
    if not overwrite:
        _refuse_existing(output_dir, [Path(n).stem for n in names], probabilities)


@contextlib.contextmanager
def _holding(output_dir):
    """``output_dir`` made (with the folders above it) and locked (``LOCK_NAME``,
    non-blocking) for one run. The lock file is removed when the run ends, and so are
    the folders made for it if they are still empty (a run that failed before its
    first mask leaves nothing behind)."""
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


def _predict_one(model, path, output_dir, threshold, probabilities, tiled):
    """Segment one image file into ``output_dir`` (made and held by the caller)."""
    from PIL import Image

    try:
        scores = predict_tiled(model, read_image(path), **tiled)
    except ValueError as error:
        message = str(error)
        raise ValueError(message if str(path) in message else f"{path}: {message}") from None
    target = output_dir / f"{path.stem}.png"
    mask = mask_from_scores(scores, threshold)
    write_atomically(target, lambda file: Image.fromarray(mask).save(file, format="PNG"))
    if probabilities:
        import tifffile

        write_atomically(output_dir / "probabilities" / f"{path.stem}.tif",
                         lambda file: tifffile.imwrite(file, scores.astype(np.float32)))
    return target


def _predict_paths(model, paths, output_dir, *, threshold, probabilities, overwrite, progress,
                   **tiled):
    """Check everything that can be checked before reading an image (the arguments, the
    tile against the model, ``output_dir``), then predict ``paths`` into it, holding
    its lock."""
    output_dir = Path(output_dir)
    _check_arguments(tiled["overlap"], tiled["blend"], tiled["tta"], tiled["batch_size"])
    _check_threshold(threshold)
    _Plan(model, tiled["tile"], tiled["overlap"], None)
    stems = [path.stem for path in paths]
    check_output_dir(output_dir, stems, probabilities=probabilities, overwrite=overwrite)
    written = []
    with _holding(output_dir):
        if not overwrite:  # again, now that no other run can write there
            _refuse_existing(output_dir, stems, probabilities)
        for number, path in enumerate(paths, start=1):
            if progress and len(paths) > 1:
                print(f"[{number}/{len(paths)}] {path.name}")
            try:
                written.append(_predict_one(model, path, output_dir, threshold, probabilities,
                                            dict(tiled, progress=progress)))
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
    """Segment every image of a folder and write the masks as PNG files.

    Each image (PNG, JPEG, TIFF, BMP, GIF; any size) goes through
    :func:`predict_tiled`; its mask is written to ``output_dir`` under the image's
    name with the suffix ``.png``: 0/255 for a binary model (``scores >
    threshold``), class indices for a multi-class one. With ``probabilities=True``
    the scores are written too, as float32 TIFF ``probabilities/<name>.tif`` inside
    ``output_dir``: a subfolder, so that ``output_dir`` holds masks only, ready to be
    scored against the true ones. Files are written whole or not at all, with the
    permissions a plain ``open()`` gives (0o666 less the umask).

    Before any image is read, the arguments, the tile (against the model) and
    ``output_dir`` are checked (see :func:`check_output_dir`): a file that exists
    where a mask or probability map would go is refused unless ``overwrite=True``, so
    a user's own files are never replaced without asking, and a second run into the
    same folder needs ``overwrite=True`` too. While the run writes, it holds
    ``output_dir/.keras-unet.lock`` (removed at the end): a second run into the same
    folder at the same time is refused instead of mixing its masks with the first's.
    (On Windows there is no lock.)

    Returns:
        the paths of the written masks, in the order of the image names.

    Raises:
        ValueError: for a missing or empty ``input_dir``; an output folder that is a
            file, cannot be made, takes no files, is in use by another run, or holds
            files this run would write (without ``overwrite=True``); a bad argument or
            tile; a file that is not an image, or an image the model cannot take,
            naming the file and how many masks were written before it.

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
        >>> _ = predict_folder(model, folder / "in", folder / "out", overwrite=True, progress=False)
    """
    files = image_files(input_dir, "input_dir")
    return _predict_paths(model, list(files.values()), output_dir, threshold=threshold,
                          probabilities=probabilities, overwrite=overwrite, progress=progress,
                          tile=tile, overlap=overlap, blend=blend, tta=tta,
                          batch_size=batch_size)


def predict_file(model, path, output_dir, *, threshold=0.5, probabilities=False, tile=None,
                 overlap=0.25, blend="gaussian", tta=None, batch_size=8, overwrite=False,
                 progress=True):
    """Segment one image file; write ``output_dir/<name>.png`` (and, with
    ``probabilities=True``, ``output_dir/probabilities/<name>.tif``) as
    :func:`predict_folder` does, with the same checks (an existing file there is
    replaced only with ``overwrite=True``), and return the mask's path."""
    (written,) = _predict_paths(model, [Path(path)], output_dir, threshold=threshold,
                                probabilities=probabilities, overwrite=overwrite,
                                progress=progress, tile=tile, overlap=overlap, blend=blend,
                                tta=tta, batch_size=batch_size)
    return written
