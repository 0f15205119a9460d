"""What data is: image and mask files read into arrays, the conventions every stage calls
(:func:`as_image`, :func:`as_mask`, :func:`as_prediction`), and files written whole.

Images: float32 (H, W, C) in [0, 1], C 1 or 3. Masks: ``binary`` float32 {0, 1} (H, W, 1);
``multiclass`` int32 class indices (H, W, 1); ``multilabel`` float32 {0, 1} (H, W, labels),
one channel per label. How mask files are read and what each refusal advises: docs/masks.md.
"""

import contextlib
import numbers
import os
import secrets
import tempfile
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np
import tifffile
from PIL import Image

from keras_unet.checks import check_array, check_choice, check_int, check_number, count, fail

try:
    import fcntl
except ImportError:  # Windows: no lock between processes
    fcntl = None

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif")
AUTO_MAX_CLASSES = 64  # mask_mode="auto" reads masks with all values below it as classes
MASK_MODES = ("binary", "multiclass", "multilabel")
READ_MODES = ("auto", "binary", "multiclass", "palette")  # of mask files ("classes": multiclass)
NEAR_BINARY = 0.9  # this share of pixels near the ends of the range: a noisy binary mask
FULL_SCALE = {np.dtype(np.uint8): 255, np.dtype(np.uint16): 65535}  # others: 1


class Split(NamedTuple):
    """A dataset split: ``images``, ``masks`` (``(n, H, W, C)`` arrays if all of one size, else
    lists; ``masks`` None where there are none), the file stems ``names``, DRIVE's ``fov``."""

    images: object
    masks: object
    names: list
    fov: object = None


def writable_folder(path):
    """The nearest existing folder at or above ``path``, checked to take new entries by a probe
    made and removed; else NotADirectoryError or OSError with it as ``filename``."""
    path = Path(path)
    existing = next(f for f in (path, *path.parents) if os.path.lexists(f))
    if not existing.is_dir():
        raise NotADirectoryError(20, "not a folder", str(existing))
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".keras-unet-probe-", dir=existing))
    except OSError as error:
        raise OSError(error.errno, error.strerror, str(existing)) from None
    return existing


def write_atomically(path, write):
    """Call ``write(file)`` on a new file beside ``path`` and move it into place: ``path`` ends
    up whole or untouched. Makes the folder; the mode is ``open()``'s (0o666 less the umask).

    >>> write_atomically(Path(tempfile.mkdtemp()) / "a.txt", lambda f: f.write(b"1")).read_text()
    '1'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:  # "x": never a file that exists (mkstemp would make it 0o600)
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
        with contextlib.suppress(FileExistsError):
            open(temporary, "xb").close()
            break
    try:
        with open(temporary, "wb") as file:  # a named file: some writers read file.name
            write(file)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


@contextlib.contextmanager
def locked(path, *, wait=True, remove=False):
    """Hold an exclusive ``flock`` on the file ``path`` (made if missing) for the ``with`` block
    (none on Windows). ``wait=False``: BlockingIOError at once if held; ``remove=True``: remove
    the file at the end, still locked (a lock on a file removed meanwhile is taken again)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(100):
        handle = open(path, "a")
        if fcntl is None:
            break
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BaseException:
            handle.close()
            raise
        with contextlib.suppress(FileNotFoundError):  # still the file at path?
            if not remove or os.path.samestat(os.fstat(handle.fileno()), os.stat(path)):
                break
        handle.close()
    with contextlib.closing(handle):  # closing releases the lock
        try:
            yield
        finally:
            if remove:  # while locked: no later process locks a removed file
                path.unlink(missing_ok=True)


def _open(path):
    """``(pixels, colours)``: a one-image file's pixels ``(H, W[, C])`` in its own dtype, and
    for a palette image the RGB(A) colours of those indices (else None)."""
    path, tiff = Path(path), None
    if not path.is_file():
        raise ValueError(f"no such image file: {path}")
    if path.suffix.lower() in (".tif", ".tiff"):  # tifffile: any depth; PIL: LZW and JPEG
        with contextlib.suppress(OSError, ValueError, IndexError, KeyError):
            with tifffile.TiffFile(path) as file:
                tiff = len(file.pages), file.series[0].axes, file.series[0].asarray()
    if tiff and tiff[0] > 1:
        raise ValueError(f"{path} is a multi-page TIFF ({tiff[0]} pages); expected one image")
    if tiff and tiff[1] not in ("YX", "YXS", "SYX"):
        raise ValueError(f"{path} has TIFF axes {tiff[1]!r}; expected YX or YXS")
    if tiff:
        return (np.moveaxis(tiff[2], 0, -1) if tiff[1] == "SYX" else tiff[2]), None
    try:
        with Image.open(path) as image:
            image.load()
            frames, mode, colours = getattr(image, "n_frames", 1), image.mode, None
            if mode == "P":
                alpha = "transparency" in image.info
                colours = np.asarray(image.convert("RGBA" if alpha else "RGB"))
            elif mode not in ("L", "LA", "RGB", "RGBA", "I", "F") and mode[:4] != "I;16":
                image = image.convert({"1": "L", "PA": "RGBA", "La": "RGBA",
                                       "RGBa": "RGBA"}.get(mode, "RGB"))  # CMYK, LAB, ...
            array = np.asarray(image)
    except (OSError, ValueError, SyntaxError, EOFError) as error:
        raise ValueError(f"cannot read the image {path}: {error}") from error
    if frames > 1:
        raise ValueError(f"{path} has {frames} frames (an animated or multi-page image); "
                         f"expected one image")
    if mode[0] == "I" and array.size and 0 <= array.min() and array.max() <= 65535:
        array = array.astype(np.uint16)  # 16-bit PNGs open as 32-bit "I"
    return array, colours


def as_image(array, name="image", *, stretch=False):
    """An image in the package convention: float32 ``(H, W, C)`` in [0, 1], C 1 or 3.

    uint8 / 255, uint16 / 65535, bool 0/1, float kept if in [0, 1]; a 2-D array gets a channel
    axis, an opaque alpha channel is dropped. ``stretch=True`` (for display) maps any other
    numeric range onto [0, 1] and drops any alpha instead of refusing. Errors start with ``name``.

    >>> as_image(np.array([[0, 51, 255]], np.uint8)).ravel().astype(float).round(3).tolist()
    [0.0, 0.2, 1.0]
    """
    array = np.asarray(array)
    array = array[..., None] if array.ndim == 2 else array
    if array.ndim != 3 or array.shape[-1] not in (1, 2, 3, 4) or not array.size:
        raise ValueError(f"{name} has shape {array.shape}; expected (H, W) or (H, W, C) with "
                         f"C 1 (gray) or 3 (RGB), or either with an opaque alpha channel")
    if array.shape[-1] in (2, 4):
        transparent = np.count_nonzero(array[..., -1] != FULL_SCALE.get(array.dtype, 1))
        if transparent and not stretch:
            raise ValueError(f"{name} has an alpha channel with {transparent} transparent pixels;"
                             f" only fully opaque images are read (remove the alpha channel first)")
        array = array[..., :-1]
    kind = array.dtype.kind
    if array.dtype in (np.uint8, np.uint16, bool):
        return array.astype(np.float32) / FULL_SCALE.get(array.dtype, 1)
    if kind not in "iuf" or (kind != "f" and not stretch):
        raise ValueError(f"{name} has {array.dtype} pixels; expected 8-bit, 16-bit or float in "
                         f"[0, 1]")
    if kind == "f" and np.isnan(array).any():
        raise ValueError(f"{name} has NaN pixels ({np.isnan(array).sum()} of them)")
    low, high = float(array.min()), float(array.max())
    if stretch and (kind != "f" or low < 0 or high > 1):
        return ((array.astype(np.float64) - low) / (high - low or 1)).astype(np.float32)
    if low < 0 or high > 1:
        raise ValueError(f"{name} is a float image with values in [{low:g}, {high:g}]; float "
                         f"images must be in [0, 1]")
    return array.astype(np.float32)


def read_image(path):
    """An image file (PNG, JPEG, TIFF, BMP, GIF; 8/16-bit or float TIFF; any colour mode) as
    :func:`as_image` gives it (a palette of gray colours reads gray); errors name the file."""
    array, colours = _open(path)
    if colours is not None:
        gray = not np.ptp(colours[..., :3], axis=-1).any()
        array = colours[..., [0, 3] if colours.shape[-1] == 4 else [0]] if gray else colours
    return as_image(array, path)


class MaskValuesError(ValueError):
    """Mask values that do not read as meant: ``values`` found (sorted), ``files`` at fault
    (paths or names), ``fix`` ``{keyword: value}`` to pass instead, as the message words it."""

    def __init__(self, message, *, values, files, fix=None):
        super().__init__(message)
        self.values, self.files, self.fix = list(values), list(files), dict(fix or {})


def _values_text(values, limit=10):
    shown = ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values[:limit])
    return shown + (f", ... ({len(values)} values)" if len(values) > limit else "")


def as_mask(array, name="mask", mode=None, *, n_classes=None, ignore_index=None, batch=False):
    """A mask in the package convention; ``mode`` one of MASK_MODES, or None to infer it (bool
    or float: binary, or multilabel with L > 1 channels; integer: multiclass). An explicit mode
    converts values that fit it. Class indices are >= 0, below ``n_classes`` if given, and
    ``ignore_index`` pixels keep their value. ``batch=True``: the first axis holds examples.
    Errors start with ``name``; bad values raise a :class:`MaskValuesError` (docs/masks.md).

    >>> as_mask(np.array([[0, 255]]))
    Traceback (most recent call last):
    keras_unet.images.MaskValuesError: mask holds 0 and 255 only: a binary mask stored as
    0/255, not class indices; pass (mask > 0)
    """
    array = check_array(array, name)
    check_ignore_index(ignore_index)
    if n_classes is not None:
        check_int(n_classes, "n_classes", 2)
    array = array[..., None] if array.ndim == 2 + batch else array
    kind, axes = "b" if array.dtype == bool else array.dtype.kind, "N, H, W" if batch else "H, W"
    if mode is None and array.ndim == 3 + batch:
        mode = "multiclass" if kind in "iu" or ignore_index is not None else (
            "binary" if array.shape[-1] == 1 else "multilabel")
    check_choice(mode, (None, *MASK_MODES) if array.ndim != 3 + batch else MASK_MODES, "mode")
    if array.ndim != 3 + batch or mode != "multilabel" and array.shape[-1] != 1:
        raise ValueError(f"{name} must have the shape ({axes}) or ({axes}, 1), or ({axes}, "
                         f"labels) of 0/1 floats or bools for a multilabel mask; got "
                         f"{array.shape} ({array.dtype})")
    values = np.unique(array).tolist()
    classes, text = [v for v in values if v != ignore_index], _values_text(values)

    def refuse(message, fix=None):
        raise MaskValuesError(f"{name} {message}", values=values, files=[name], fix=fix)

    if kind in "iu" and values in ([0, 255], [0, 65535]):
        refuse(f"holds 0 and {values[1]} only: a binary mask stored as 0/{values[1]}, not class "
               f"indices; pass (mask > 0)")
    if mode != "multiclass" and not set(values) <= {0, 1}:
        hint = "; class indices are integers" if kind == "f" else ""
        refuse(f"must hold 0 and 1 only (a {mode} mask{hint}); got the values {text}")
    if mode != "multiclass":
        return array.astype(np.float32)
    if not all(float(v).is_integer() and v >= 0 for v in values):
        refuse(f"must hold class indices (integers >= 0); got the values {text}")
    if ignore_index is None and values[-1] == 255 and (n_classes or 0) <= 255 \
            and not _too_sparse(values[:-1]):
        refuse(f"has the values {text}, which as class indices make 256 classes, "
               f"{256 - len(values)} of them never used. If 255 marks unlabelled pixels, pass "
               f"ignore_index=255", {"ignore_index": 255})
    above = [v for v in classes if n_classes is not None and v >= n_classes]
    if above:
        ignored = "" if ignore_index is None else f" (or be ignore_index={ignore_index})"
        refuse(f"must hold class indices below n_classes={n_classes}{ignored}; got "
               f"{_values_text(above)}")
    return array.astype(np.int32)


class Prediction(NamedTuple):
    """:func:`as_prediction`'s answer: ``labels`` in the :func:`as_mask` form, ``scores`` the
    float32 ``(H, W, C)`` scores of a soft prediction (else None)."""

    labels: np.ndarray
    scores: object = None


def as_prediction(array, name="prediction", *, threshold=0.5, mode=None):
    """A model's output (or a mask) as a :class:`Prediction`. bool and integer arrays are masks
    (:func:`as_mask`); float ``(H, W[, 1])`` in [0, 1] is labelled 1 above ``threshold``; float
    ``(H, W, C>=2)``: per-label probabilities with ``mode="multilabel"`` (each thresholded),
    else class scores (argmax; a 2-channel softmax in [0, 1]: channel 1 above ``threshold``).

    >>> as_prediction(np.array([[0.2, 0.7]])).labels.ravel().tolist()
    [0.0, 1.0]
    """
    array = check_array(array, name)
    check_number(threshold, "threshold", 0, 1)
    if array.dtype.kind != "f":
        return Prediction(as_mask(array, name, mode))
    if mode is not None:
        check_choice(mode, MASK_MODES, "mode")
    array = array[..., None] if array.ndim == 2 else array
    if array.ndim != 3:
        raise ValueError(f"{name} must have the shape (H, W) or (H, W, C); got {array.shape}")
    scores, soft = array.astype(np.float32), 0 <= array.min() and array.max() <= 1
    if (array.shape[-1] == 1 or mode == "multilabel") and not soft:
        raise ValueError(f"{name} must hold probabilities in [0, 1] (after a sigmoid); got "
                         f"values in [{array.min():g}, {array.max():g}]")
    if array.shape[-1] == 1 or mode == "multilabel":
        hard = array > threshold
        return Prediction(hard.astype(np.int32 if mode == "multiclass" else np.float32), scores)
    if array.shape[-1] == 2 and soft:
        return Prediction((array[..., 1:] > threshold).astype(np.int32), scores)
    return Prediction(np.argmax(array, axis=-1)[..., None].astype(np.int32), scores)


def _too_sparse(values):
    """Whether sorted class indices leave as many indices unused below the largest as they
    use (then they are not class indices: :func:`mask_classes`)."""
    n = int(values[-1]) + 1 if values else 0
    return n > 2 and n - len(values) >= len(values)


def _value_counts(arrays):
    counts = {}
    for array in arrays:
        for value, n in zip(*(a.tolist() for a in np.unique(array, return_counts=True))):
            counts[value] = counts.get(value, 0) + n
    return counts


def _fix_for(counts):
    """``(advice, fix)`` for mask values ``{value: pixels}`` that do not read as wanted: the one
    rule that words every mask-values error (docs/masks.md)."""
    values = sorted(counts)
    low, high = values[0], values[-1]
    integral = all(float(v).is_integer() and v >= 0 for v in values)
    ends = sum(n for v, n in counts.items() if min(v - low, high - v) <= (high - low) / 4)
    middle = int(low + high) // 2 if integral else (low + high) / 2
    if integral and not _too_sparse(values):
        return ("Pass mask_mode='multiclass' to take them as class indices",
                {"mask_mode": "multiclass"})
    if integral and len(values) >= 3 and not _too_sparse(values[:-1]):
        return (f"If {int(high)} marks unlabelled pixels, pass ignore_index={int(high)}",
                {"ignore_index": int(high)})
    if set(values) in ({0, 255}, {0, 65535}):
        return "They are binary masks: pass mask_mode='binary'", {"mask_mode": "binary"}
    if ends >= NEAR_BINARY * sum(counts.values()):
        look = (f"binary masks of {low:g} and {high:g}" if len(values) == 2 else
                "binary masks with in-between values at the edges (JPEG, smoothing)")
        return (f"They look like {look}: pass threshold={middle:g} to read the pixels above "
                f"{middle:g} as 1", {"threshold": middle})
    if integral and len(values) <= 8:
        palette = {(int(v),) * 3: i for i, v in enumerate(values)}
        return f"If each value is a class, number them with palette={palette}", {"palette": palette}
    return "Renumber the classes 0, 1, 2, ... in the files", {}


def _values_error(files, counts, reason, advice=None):
    """Raise "the mask(s) <files> has/have the values <...><reason>" and the advice: a
    :class:`MaskValuesError` with :func:`_fix_for`'s, or a ValueError with ``advice``."""
    more = f" and {len(files) - 3} more" if len(files) > 3 else ""
    where = (f"the mask {files[0]} has" if len(files) == 1 else
             f"the masks {', '.join(map(str, files[:3]))}{more} have")
    message = f"{where} the values {_values_text(sorted(counts))}{reason}"
    if advice is not None:
        raise ValueError(message + advice)
    advice, fix = _fix_for(counts)
    raise MaskValuesError(message + advice, values=sorted(counts), files=files, fix=fix)


def _mask_pixels(path):
    """``(gray, colours)`` of a mask file: gray values ``(H, W)`` (None for a colour mask) and
    colours ``(H, W, 3)`` (None for a gray one); a coloured palette image gives its indices."""
    array, colours = _open(path)
    if colours is not None:
        colours = colours[..., :3]  # a transparent palette entry is a colour like any
        return (array if np.ptp(colours, axis=-1).any() else colours[..., 0]), colours
    if array.ndim == 3 and array.shape[-1] in (3, 4):
        return (None if np.ptp(array[..., :3], axis=-1).any() else array[..., 0]), array[..., :3]
    array = array[..., 0] if array.ndim == 3 and array.shape[-1] in (1, 2) else array
    if array.ndim != 2:
        raise ValueError(f"the mask {path} has shape {array.shape}; expected one channel")
    if array.dtype.kind == "f" and np.isnan(array).any():
        raise ValueError(f"the mask {path} has NaN values")
    return array, None


def _is_binary(gray):
    values = set(np.unique(gray).tolist())
    return values <= {0, 1} or values <= {0, FULL_SCALE.get(gray.dtype, 1)}


def _are_classes(gray):
    return all(float(v).is_integer() and 0 <= v < AUTO_MAX_CLASSES for v in np.unique(gray))


def _file_mask(pixels, mode, path, palette=None, threshold=None, ignore_index=None):
    """A mask file's ``(gray, colours)`` in the package convention (:func:`as_mask`)."""
    gray, colours = pixels
    if mode == "palette":
        colours = np.repeat(gray[..., None], 3, axis=-1) if colours is None else colours
        codes = colours.astype(np.int64) @ np.array([1 << 16, 1 << 8, 1])
        known = {(r << 16) | (g << 8) | b: c for (r, g, b), c in palette.items()}
        found, inverse = np.unique(codes, return_inverse=True)
        missing = [str((c >> 16, c >> 8 & 255, c & 255)) for c in found.tolist() if c not in known]
        if missing:
            raise ValueError(f"the mask {path} has colours that are not in palette: "
                             f"{', '.join(missing[:10])}")
        gray, mode = np.array([known[c] for c in found.tolist()])[inverse.reshape(codes.shape)], \
            "multiclass"
    if gray is None:
        raise ValueError(f"the mask {path} is colour-coded; pass mask_mode='palette' and "
                         f"palette={{(r, g, b): class, ...}}")
    top = np.iinfo(gray.dtype).max if gray.dtype.kind in "iu" else np.inf
    if threshold is not None and threshold >= top:
        raise ValueError(f"threshold={threshold:g} is not below {top}, the top value of the mask "
                         f"{path}: every pixel would read as 0 (for 8-bit masks, e.g. "
                         f"threshold=127)")
    if threshold is not None and threshold >= 1 and set(np.unique(gray).tolist()) == {0, 1}:
        raise ValueError(f"the mask {path} holds 0 and 1 only, which threshold={threshold:g} "
                         f"reads as all 0: it is a binary mask already; read it without threshold=")
    binary = threshold is not None or _is_binary(gray)
    if mode == "auto":
        mode = "binary" if binary else "multiclass" if _are_classes(gray) else None
    if mode == "binary" and binary or mode == "multiclass" and not (
            gray.dtype.kind in "iu" and set(np.unique(gray).tolist()) in ({0, 255}, {0, 65535})):
        array = gray > (threshold or 0) if mode == "binary" else gray
        try:
            return as_mask(array, f"the mask {path}", mode, ignore_index=ignore_index)
        except MaskValuesError as error:
            error.files = [path]
            raise
    expected = {"binary": "binary values (0/255 or 0/1)", "multiclass": "class indices"}.get(
        mode, f"binary values (0/255 or 0/1) or class indices below {AUTO_MAX_CLASSES}")
    _values_error([path], _value_counts([gray]), f"; expected {expected}. ")


def _read_mode(mode, palette, threshold=None, ignore_index=None):
    """The checked mode of a mask reader's arguments, its alias and ``"auto"`` resolved."""
    mode = check_choice({"classes": "multiclass"}.get(mode, mode), READ_MODES, "mask_mode")
    mode = "palette" if mode == "auto" and palette is not None else mode
    if mode == "palette" and palette is None:
        raise ValueError("mask_mode='palette' needs palette={(r, g, b): class, ...}")
    if palette is not None and (not isinstance(palette, dict) or not palette):
        fail("palette", "a non-empty dict {(r, g, b): class}", palette)
    for colour, index in (palette or {}).items():
        if not (isinstance(colour, tuple) and len(colour) == 3 and all(
                isinstance(v, numbers.Integral) and 0 <= v <= 255 for v in colour)
                and isinstance(index, numbers.Integral) and index >= 0):
            fail("palette", "a dict of (r, g, b) tuples of 0..255 to class indices >= 0",
                 {colour: index})
    if threshold is not None and (isinstance(threshold, bool) or not isinstance(
            threshold, numbers.Real) or not np.isfinite(threshold) or threshold < 0):
        fail("threshold", "a number >= 0 in the masks' own scale (e.g. 127 for 8-bit masks)",
             threshold)
    if threshold is not None and ignore_index is not None:
        raise ValueError("give threshold= (binary masks) or ignore_index= (class masks), not both")
    if threshold is not None and mode in ("multiclass", "palette"):
        raise ValueError(f"threshold= reads binary masks; it does not go with "
                         f"{'palette=' if palette is not None else f'mask_mode={mode!r}'}")
    check_ignore_index(ignore_index)
    if ignore_index is not None and mode == "binary":
        raise ValueError("ignore_index= keeps unlabelled pixels in class-index masks; it does "
                         "not go with mask_mode='binary': use mask_mode='multiclass'")
    return "binary" if threshold is not None else (
        "multiclass" if ignore_index is not None and mode == "auto" else mode)


def read_mask(path, mode="auto", palette=None, *, threshold=None, ignore_index=None):
    """A mask file (PNG, TIFF, GIF, BMP) as :func:`as_mask` gives it, ``(H, W, 1)``.

    ``mode``: ``"binary"`` (0/255, 0/65535 or 0/1), ``"multiclass"`` (or ``"classes"``: class
    indices as stored), ``"palette"`` (colours to classes by ``palette={(r, g, b): class}``) or
    ``"auto"`` (as the values say). ``threshold``: the pixels above it (in the file's scale)
    read 1 (JPEG masks). ``ignore_index``: the value of unlabelled pixels, kept. Values that fit
    no mode raise a :class:`MaskValuesError` saying what to pass; errors name the file.

    >>> path = Path(tempfile.mkdtemp()) / "mask.png"
    >>> Image.fromarray(np.array([[0, 1, 255]], np.uint8)).save(path)
    >>> read_mask(path, ignore_index=255).ravel().tolist()  # 255: unlabelled
    [0, 1, 255]
    """
    mode = _read_mode(mode, palette, threshold, ignore_index)
    return _file_mask(_mask_pixels(path), mode, path, palette, threshold, ignore_index)


def check_ignore_index(ignore_index):
    """Refuse an ``ignore_index`` (the value of unlabelled pixels) not None or an int >= 0."""
    if ignore_index is not None and (isinstance(ignore_index, bool) or not isinstance(
            ignore_index, numbers.Integral) or ignore_index < 0):
        fail("ignore_index", "an integer >= 0, the value of unlabelled pixels (e.g. 255)",
             ignore_index)


def mask_classes(masks, ignore_index=None, *, names=None, n_classes=None):
    """The number of classes (>= 2) of integer class-index masks (``(n, ...)`` or a list):
    ``n_classes`` if given, which every value must be below (or be ``ignore_index``), else one
    more than the largest value. The values must be dense and ``ignore_index`` above every
    class; else a :class:`MaskValuesError` says what they look like. ``names``: for messages.

    >>> mask_classes([np.array([[0, 1], [2, 2]]), np.array([[0, 3]])])
    4
    >>> mask_classes([np.array([[0, 1, 255]])], ignore_index=255)
    2
    """
    names = [f"masks[{i}]" for i in range(len(masks))] if names is None else list(names)
    if n_classes is not None and (isinstance(n_classes, bool) or not isinstance(
            n_classes, numbers.Integral) or n_classes < 2):
        fail("n_classes", "an integer >= 2 (or None to count the classes from the masks)",
             n_classes)
    if n_classes is not None and ignore_index is not None and ignore_index < n_classes:
        raise ValueError(f"ignore_index={ignore_index} is one of the n_classes={n_classes} "
                         f"classes (0 to {n_classes - 1}): the ignored value must be above every "
                         f"class (e.g. ignore_index=255)")
    held = []
    for name, mask in zip(names, map(np.asarray, masks)):
        if not (mask.dtype == bool or mask.dtype.kind in "iu"):
            raise ValueError(f"{name} has {mask.dtype} values; mask_classes counts the classes of "
                             f"class-index (integer) masks, a float mask is binary")
        held.append((name, _value_counts([mask])))
        if held[-1][1] and min(held[-1][1]) < 0:
            raise ValueError(f"{name}: class indices must be >= 0; found {min(held[-1][1])}")
        held[-1][1].pop(ignore_index, None)
    counts = {}
    for _, own in held:
        counts.update({v: counts.get(v, 0) + n for v, n in own.items()})
    if not counts:
        raise ValueError(f"every pixel of the masks is ignore_index={ignore_index}: no class")
    values = sorted(counts)
    if n_classes is None and ignore_index is not None and ignore_index < values[-1]:
        raise ValueError(f"ignore_index={ignore_index} is below the class {values[-1]} of the "
                         f"masks: the ignored value must be above every class (e.g. "
                         f"ignore_index=255)")
    above = [v for v in values if v >= (len(values) if n_classes is None else n_classes)]
    if n_classes is None and not _too_sparse(values):
        return max(int(values[-1]) + 1, 2)
    if not above:
        return int(n_classes)
    files = [name for name, own in held if set(own) & set(above)]
    if n_classes is None:
        _values_error(files, counts, f", which as class indices make {values[-1] + 1} classes, "
                                     f"{values[-1] + 1 - len(values)} of them never used. ")
    share = 100 * sum(counts[v] for v in above) / sum(counts.values())
    share = f"{share:.0f}%" if share >= 1 else f"{share:.1g}%"
    void = "" if ignore_index is not None or len(above) > 1 else (
        f", or ignore_index={above[0]} if {above[0]} marks unlabelled pixels")
    classes = "0 and 1" if n_classes == 2 else f"0 to {n_classes - 1}"
    _values_error(files, counts, f", but n_classes={n_classes} makes the classes {classes}: the "
                  f"pixels of {_values_text(above)} ({share} of them) would be left out of "
                  f"training and scores. ", f"Pass n_classes={above[-1] + 1}{void}")


def check_not_empty(masks, ignore_index=None):
    """A one-line warning if every mask is all background (nothing above 0 but
    ``ignore_index``): a model trained on them learns to predict nothing. Else None."""
    if not any(np.any((m > 0) & (m != ignore_index)) for m in map(np.asarray, masks)):
        ignored = "" if ignore_index is None else f" but ignore_index={ignore_index}"
        return (f"every mask is all background ({count(masks, 'mask')}, no pixel above 0"
                f"{ignored}): a model trained on them learns to predict nothing; check the "
                f"masks and mask_mode")
    return None


def stack_or_list(arrays):
    """One ``(n, ...)`` array if all have one shape, else the list."""
    return np.stack(arrays) if len({a.shape for a in arrays}) == 1 else list(arrays)


def image_files(folder, argument="folder"):
    """The image files of ``folder`` as ``{stem: path}``, sorted, hidden ones skipped; a missing
    or empty folder, a file not an image, or two images of one stem is a ValueError."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{argument} {folder} is not a folder")
    files = [p for p in sorted(folder.iterdir()) if p.is_file() and not p.name.startswith(".")]
    others = [p.name for p in files if p.suffix.lower() not in IMAGE_SUFFIXES]
    if others:
        raise ValueError(f"{argument} {folder} holds files that are not images: "
                         f"{', '.join(others[:10])} (image suffixes: {' '.join(IMAGE_SUFFIXES)})")
    if not files:
        raise ValueError(f"{argument} {folder} holds no images")
    by_stem = {}
    for path in files:
        if by_stem.setdefault(path.stem, path) != path:
            raise ValueError(f"{argument} {folder} holds two images named {path.stem!r}: "
                             f"{by_stem[path.stem].name} and {path.name}")
    return by_stem


def pair_files(images_dir, masks_dir, *, names=("images_dir", "masks_dir"),
               unmatched=("images without a mask", "masks without an image")):
    """``[(image, mask)]`` paths matched by file stem (a mask may be ``<stem>_mask.*``);
    unmatched files are a ValueError listing them, worded by ``names`` and ``unmatched``."""
    images, masks = image_files(images_dir, names[0]), image_files(masks_dir, names[1])
    pairs, lonely = [], []
    for stem, image in images.items():
        found = [s for s in (stem, f"{stem}_mask") if s in masks]
        if len(found) == 2:
            raise ValueError(f"the image {image.name} has two masks: {masks[stem].name} and "
                             f"{masks[found[1]].name}")
        pairs += [(image, masks.pop(found[0]))] if found else []
        lonely += [] if found else [image.name]
    parts = [f"{unmatched[0]} in {masks_dir}: {', '.join(lonely[:10])}"] if lonely else []
    parts += [f"{unmatched[1]} in {images_dir}: "
              f"{', '.join(p.name for p in list(masks.values())[:10])}"] if masks else []
    if parts:
        raise ValueError("; ".join(parts) + " (pairs are matched by file stem, or <stem>_mask)")
    return pairs


def check_same_size(image, mask, image_path, mask_path):
    if image.shape[:2] != mask.shape[:2]:
        raise ValueError(f"the image {image_path} is {image.shape[1]}x{image.shape[0]} but its "
                         f"mask {mask_path} is {mask.shape[1]}x{mask.shape[0]} (width x height)")


def _listed(files):
    return ", ".join(files[:3]) + (", ..." if len(files) > 3 else "")


def from_folder(images_dir, masks_dir, *, mask_mode="auto", palette=None, threshold=None,
                ignore_index=None, n_classes=None):
    """Read a folder of images and one of masks, paired by file stem (``cat.jpg`` with
    ``cat.png`` or ``cat_mask.png``), as a :class:`Split` in the order of the stems: images as
    :func:`read_image` (gray ones repeated to RGB if others are RGB), masks as
    :func:`read_mask`, ``"auto"`` deciding once for the folder (0/1 and 0/255 masks mixed:
    binary, with a warning); class masks checked together by :func:`mask_classes`.

    >>> root = Path(tempfile.mkdtemp())
    >>> (root / "images").mkdir(); (root / "masks").mkdir()
    >>> Image.fromarray(np.full((4, 6), 128, np.uint8)).save(root / "images/a.png")
    >>> Image.fromarray(np.eye(4, 6, dtype=np.uint8) * 255).save(root / "masks/a.png")
    >>> split = from_folder(root / "images", root / "masks")
    >>> split.images.shape, split.masks.shape, split.masks.dtype, split.names
    ((1, 4, 6, 1), (1, 4, 6, 1), dtype('float32'), ['a'])
    """
    mode = _read_mode(mask_mode, palette, threshold, ignore_index)
    pairs = pair_files(images_dir, masks_dir)
    paths, raw = [m for _, m in pairs], [_mask_pixels(m) for _, m in pairs]
    grays = [(gray, path) for (gray, _), path in zip(raw, paths) if gray is not None]
    binary = len(grays) < len(raw) or all(_is_binary(gray) for gray, _ in grays)
    if mode == "auto" and not binary and not _are_classes(np.concatenate(
            [gray.ravel() for gray, _ in grays])):  # one mode for all: 0/1 and 0..3 are classes
        _values_error([path for gray, path in grays if not _are_classes(gray)], _value_counts(
            [g for g, _ in grays]), f"; with mask_mode='auto' masks must all be binary (0/255 "
                                    f"or 0/1) or class indices below {AUTO_MAX_CLASSES}. ")
    mode = ("binary" if binary else "multiclass") if mode == "auto" else mode
    masks = [_file_mask(pixels, mode, path, palette, threshold, ignore_index)
             for pixels, path in zip(raw, paths)]
    images = [read_image(image_path) for image_path, _ in pairs]
    for image, mask, (image_path, mask_path) in zip(images, masks, pairs):
        check_same_size(image, mask, image_path, mask_path)
    full = [p.name for g, p in grays if FULL_SCALE.get(g.dtype, 0) in g]
    ones = [p.name for g, p in grays if p.name not in full and 1 in g]
    if mode == "binary" and threshold is None and ones and full:
        warnings.warn(f"{masks_dir} mixes two binary encodings: {count(ones, 'mask')} 0/1 "
                      f"({_listed(ones)}) and {len(full)} 0/255 ({_listed(full)}); all are read "
                      f"as binary masks of 0 and 1", stacklevel=2)
    if mode == "multiclass" or (mode == "palette" and n_classes is not None):
        mask_classes(masks, ignore_index, names=paths, n_classes=n_classes)
    if len({image.shape[-1] for image in images}) > 1:
        images = [np.repeat(i, 3, axis=-1) if i.shape[-1] == 1 else i for i in images]
    return Split(stack_or_list(images), stack_or_list(masks), [p.stem for p, _ in pairs])
