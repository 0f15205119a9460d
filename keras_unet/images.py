"""What data is: image and mask files read into arrays, the package's array conventions,
and files written whole.

- images: float32 in [0, 1], ``(height, width, channels)``, 1 (gray) or 3 (RGB) channels.
- masks: ``binary`` float32 {0, 1} ``(H, W, 1)``; ``multiclass`` int32 class indices
  ``(H, W, 1)``; ``multilabel`` float32 {0, 1} ``(H, W, labels)``.
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

try:
    import fcntl
except ImportError:  # Windows: no lock between processes
    fcntl = None

#: File name suffixes read as images (case-insensitive).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif")
#: ``mask_mode="auto"`` takes masks whose values are all below this as class indices.
AUTO_MAX_CLASSES = 64


class Split(NamedTuple):
    """One split (train or test) of a dataset.

    Attributes:
        images: float32 images, an ``(n, height, width, channels)`` array when all
            have one size, else a list of ``(height, width, channels)`` arrays.
        masks: the masks, stacked or listed like ``images`` (float32 {0, 1} binary or
            int32 class indices, one channel), or ``None`` where the dataset gives
            none (e.g. the ISBI 2012 test images).
        names: the file stems, in order.
        fov: DRIVE's field-of-view masks (float32 {0, 1}, one channel), else ``None``.
    """

    images: object
    masks: object
    names: list
    fov: object = None


def _new_file_beside(path):
    """A new empty file ``.<name>.<random>.part`` beside ``path``, with the mode
    ``open()`` gives (``0o666`` less the umask; ``tempfile.mkstemp`` would give 0o600)."""
    while True:
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
        try:
            open(temporary, "xb").close()  # "x": fails rather than reuse a file
            return temporary
        except FileExistsError:
            continue


def writable_folder(path):
    """The nearest folder at or above ``path`` that exists (where ``path`` would be
    made), checked to take new entries by making and removing a probe folder there
    (permissions alone say nothing for root). Changes nothing.

    Raises:
        NotADirectoryError: the nearest existing path (its ``filename``) is not a folder.
        OSError: nothing can be created in that folder (its ``filename``).

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> writable_folder(folder / "new" / "deeper") == folder
        True
    """
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
    """Call ``write(file)`` on a temporary file beside ``path``, then move it into
    place: ``path`` ends up whole or untouched, never half-written. Creates the folder.
    The file gets the permissions a plain ``open()`` gives a new file: ``0o666``
    less the umask (``-rw-r--r--`` under the usual umask 022).

    Example:
        >>> import tempfile
        >>> path = write_atomically(Path(tempfile.mkdtemp()) / "a" / "b.txt",
        ...                         lambda file: file.write(b"whole"))
        >>> path.read_bytes()
        b'whole'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _new_file_beside(path)
    try:
        with open(temporary, "wb") as file:  # a named file: some writers read file.name
            write(file)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)
        raise
    return path


@contextlib.contextmanager
def locked(path, *, wait=True, remove=False):
    """Hold an exclusive lock (``flock``) on the file ``path`` for the ``with`` block, so
    that two processes writing the same files take turns. The file (and its folder) is
    made if missing. On Windows, where there is no ``fcntl``, nothing is locked.

    Args:
        path: the lock file.
        wait: True to wait while another process holds the lock; False to raise
            ``BlockingIOError`` at once instead.
        remove: True to remove the file when the block ends (while still holding the
            lock); a lock taken on a file that the process before removed just after it
            was opened is then taken again on the new file.

    Example:
        >>> import tempfile
        >>> lock = Path(tempfile.mkdtemp()) / "run.lock"
        >>> with locked(lock, wait=False, remove=True):
        ...     lock.exists()
        True
        >>> lock.exists()
        False
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(100):
        handle = open(path, "a")
        if fcntl is None:
            break
        try:
            fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BaseException:
            handle.close()
            raise
        if not remove:
            break
        try:  # still the file at path, not one removed by the run before?
            if os.path.samestat(os.fstat(handle.fileno()), os.stat(path)):
                break
        except FileNotFoundError:
            pass
        handle.close()
    try:
        yield
    finally:
        try:
            if remove:  # while locked: no later process locks a removed file
                path.unlink(missing_ok=True)
        finally:
            handle.close()  # releases the lock


# ------------------------------------------------------------------------ reading


def _open(path):
    """The stored pixels of an image file: ``(array, colours)``.

    ``array`` is ``(H, W)`` or ``(H, W, C)`` in the file's own dtype; for a palette
    image it holds the palette indices and ``colours`` the RGB(A) colours, else
    ``colours`` is None. TIFFs are read with tifffile (every bit depth, exactly), or
    with PIL where tifffile lacks the codec (LZW and JPEG need imagecodecs).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no such image file: {path}")
    if path.suffix.lower() in (".tif", ".tiff"):
        array = _open_tiff(path)
        if array is not None:
            return array, None
    try:
        with Image.open(path) as image:
            image.load()
            frames = getattr(image, "n_frames", 1)
            pixels = _pil_array(image)
    except (OSError, ValueError, SyntaxError, EOFError) as error:
        raise ValueError(f"cannot read the image {path}: {error}") from error
    if frames > 1:
        raise ValueError(
            f"{path} has {frames} frames (an animated or multi-page image); expected one image"
        )
    return pixels


def _open_tiff(path):
    """A one-page TIFF's pixels, ``(H, W)`` or ``(H, W, C)``; None if tifffile
    cannot decode it."""
    try:
        with tifffile.TiffFile(path) as tif:
            pages, series = len(tif.pages), tif.series[0]
            array, axes = series.asarray(), series.axes
    except (OSError, ValueError, IndexError, KeyError):
        return None
    if pages > 1:
        raise ValueError(f"{path} is a multi-page TIFF ({pages} pages); expected one image")
    if axes == "SYX":  # planar RGB
        array = np.moveaxis(array, 0, -1)
    elif axes not in ("YX", "YXS"):
        raise ValueError(f"{path} has TIFF axes {axes!r}; expected YX or YXS")
    return array


def _pil_array(image):
    mode = image.mode
    if mode == "P":
        colours = image.convert("RGBA" if "transparency" in image.info else "RGB")
        return np.asarray(image), np.asarray(colours)
    if mode == "1":
        image = image.convert("L")
    elif mode in ("PA", "La", "RGBa"):
        image = image.convert("RGBA")
    elif mode not in ("L", "LA", "RGB", "RGBA", "I", "F") and not mode.startswith("I;16"):
        image = image.convert("RGB")  # CMYK, YCbCr, LAB, HSV
    array = np.asarray(image)
    if mode.startswith("I;16"):
        array = array.astype(np.uint16)
    elif mode == "I" and array.size and 0 <= array.min() and array.max() <= 65535:
        array = array.astype(np.uint16)  # 16-bit PNGs open as 32-bit "I"
    return array, None


def _full_scale(dtype):
    return {np.uint8: 255, np.uint16: 65535}.get(np.dtype(dtype).type, 1)


def _drop_alpha(array, path):
    """``(H, W, C)`` without an alpha channel, which must be fully opaque."""
    alpha = array[..., -1]
    transparent = np.count_nonzero(alpha != _full_scale(array.dtype))
    if transparent:
        raise ValueError(
            f"{path} has an alpha channel with {transparent} transparent pixels; "
            f"only fully opaque images are read (remove the alpha channel first)"
        )
    return array[..., :-1]


def _channels(array, path):
    """``(H, W, 1)`` or ``(H, W, 3)``."""
    if array.ndim == 2:
        return array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 2, 3, 4):
        raise ValueError(f"{path} has shape {array.shape}; expected 1 to 4 channels")
    if array.shape[-1] in (2, 4):
        array = _drop_alpha(array, path)
    return array


def _to_unit(array, path):
    """float32 in [0, 1] from uint8, uint16, bool or float pixels."""
    if array.dtype == bool:
        return array.astype(np.float32)
    if array.dtype in (np.uint8, np.uint16):
        return array.astype(np.float32) / _full_scale(array.dtype)
    if np.issubdtype(array.dtype, np.floating):
        if np.isnan(array).any():
            raise ValueError(f"{path} has NaN pixels ({np.isnan(array).sum()} of them)")
        low, high = float(array.min()), float(array.max())
        if low < 0 or high > 1:
            raise ValueError(
                f"{path} is a float image with values in [{low:g}, {high:g}]; "
                f"float images must be in [0, 1]"
            )
        return array.astype(np.float32)
    raise ValueError(
        f"{path} has {array.dtype} pixels; expected 8-bit, 16-bit or float in [0, 1]"
    )


def to_float_image(array, name="image"):
    """An image array as float32 ``(height, width, channels)`` in [0, 1], the
    package's image convention: uint8 / 255, uint16 / 65535, bool as 0/1, float
    kept if in [0, 1]; a 2-D array gets a channel axis; a fully opaque alpha channel
    is dropped. ``name`` (a path, or ``"images[3]"``) starts every error message.

    Example:
        >>> import numpy as np
        >>> image = to_float_image(np.array([[0, 51, 255]], np.uint8))
        >>> image.shape, image.dtype, image.ravel().astype(float).round(3).tolist()
        ((1, 3, 1), dtype('float32'), [0.0, 0.2, 1.0])
        >>> to_float_image(np.array([[0.5, 2.0]]), "images[1]")
        Traceback (most recent call last):
        ...
        ValueError: images[1] is a float image with values in [0.5, 2]; float images must be in [0, 1]
    """
    return _to_unit(_channels(np.asarray(array), name), name)


def read_image(path):
    """Read an image file as float32 ``(height, width, channels)`` in [0, 1].

    PNG, JPEG, TIFF, BMP and GIF, 8 or 16 bits, gray or RGB. 8-bit pixels are divided
    by 255, 16-bit ones by 65535; float TIFFs must hold values in [0, 1]. An alpha
    channel is dropped if fully opaque; palette images (GIF, indexed PNG) become RGB,
    or gray when every colour of the palette is gray; CMYK and other colour spaces are
    converted to RGB.

    Raises:
        ValueError: naming the file, if it is missing, unreadable (truncated, not an
            image), multi-page or animated (several frames), transparent, float outside
            [0, 1] or NaN.

    Example:
        >>> import tempfile, numpy as np
        >>> path = Path(tempfile.mkdtemp()) / "gray.png"
        >>> Image.fromarray(np.array([[0, 255]], np.uint8)).save(path)
        >>> image = read_image(path)
        >>> image.shape, image.dtype, image.ravel().tolist()
        ((1, 2, 1), dtype('float32'), [0.0, 1.0])
    """
    array, colours = _open(path)
    if colours is not None:  # a palette image: its colours, gray if all of them are
        gray = not np.ptp(colours[..., :3], axis=-1).any()
        array = colours[..., [0, 3] if colours.shape[-1] == 4 else [0]] if gray else colours
    return to_float_image(array, path)


def _mask_pixels(path):
    """``(gray, colour)`` of a mask file: the gray values ``(H, W)`` (None for a
    colour mask) and the colours ``(H, W, 3)`` (None for a gray mask).

    A palette image whose colours are all gray gives those gray values; one with
    colours gives its palette indices as ``gray`` (class indices, as PASCAL VOC).
    """
    array, colours = _open(path)
    if colours is not None:
        colours = colours[..., :3]  # a transparent palette entry is a colour like any
        if np.ptp(colours, axis=-1).any():
            return array, colours
        return colours[..., 0], colours
    if array.ndim == 3 and array.shape[-1] in (3, 4):
        rgb = array[..., :3]
        return (None if np.ptp(rgb, axis=-1).any() else rgb[..., 0]), rgb
    if array.ndim == 3 and array.shape[-1] in (1, 2):
        array = array[..., 0]
    if array.ndim != 2:
        raise ValueError(f"the mask {path} has shape {array.shape}; expected one channel")
    return array, None


def _values_text(values, limit=10):
    shown = ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values[:limit])
    return shown + (f", ... ({len(values)} values)" if len(values) > limit else "")


def _is_binary(values, dtype):
    return set(values) <= {0, 1} or set(values) <= {0, _full_scale(dtype)}


def _is_classes(values):
    return all(float(v).is_integer() and 0 <= v < AUTO_MAX_CLASSES for v in values)


def _unique(gray, path):
    if np.issubdtype(gray.dtype, np.floating) and np.isnan(gray).any():
        raise ValueError(f"the mask {path} has NaN values")
    return np.unique(gray).tolist()


def _palette_classes(colours, palette, path):
    codes = colours[..., :3].astype(np.int64) @ np.array([1 << 16, 1 << 8, 1])
    known = {(r << 16) | (g << 8) | b: c for (r, g, b), c in palette.items()}
    found, inverse = np.unique(codes, return_inverse=True)
    missing = [c for c in found.tolist() if c not in known]
    if missing:
        names = ", ".join(str((c >> 16, (c >> 8) & 255, c & 255)) for c in missing[:10])
        raise ValueError(f"the mask {path} has colours that are not in palette: {names}")
    classes = np.array([known[c] for c in found.tolist()], np.int32)
    return classes[inverse.reshape(codes.shape)]


def _check_palette(palette):
    if not isinstance(palette, dict) or not palette:
        raise ValueError(f"palette must be a non-empty dict {{(r, g, b): class}}; got {palette!r}")
    for colour, index in palette.items():
        ok = isinstance(colour, tuple) and len(colour) == 3
        ok = ok and all(isinstance(v, (int, np.integer)) and 0 <= v <= 255 for v in colour)
        if not ok or not isinstance(index, (int, np.integer)) or index < 0:
            raise ValueError(
                f"palette must map (r, g, b) tuples of 0..255 to class indices >= 0; "
                f"got {colour!r}: {index!r}"
            )


#: The names ``mask_mode`` takes; ``"classes"`` is another name for ``"multiclass"``.
MASK_MODES = ("auto", "binary", "multiclass", "palette")
_MODE_ALIASES = {"classes": "multiclass"}
#: Masks whose pixels lie at least this much in the bottom or top quarter of their
#: values' range are taken for binary masks with noisy edges (JPEG, anti-aliasing).
NEAR_BINARY = 0.9


class MaskValuesError(ValueError):
    """Mask values that would not read as meant, and what to pass instead.

    The message words the fix in this package's keyword arguments (``threshold=127``,
    ``ignore_index=255``, ``mask_mode='binary'``); the same fix is in ``fix`` as
    ``{keyword: value}`` (empty when no argument fixes it), so that another front end
    can word it its own way.

    Attributes:
        values: the mask values found, sorted.
        files: the masks that hold the values at fault (paths, or ``masks[i]``).
        fix: ``{keyword: value}`` to pass, e.g. ``{"threshold": 127}``; may be empty.

    Example:
        >>> try:
        ...     mask_classes([np.array([[0, 1, 255]])])
        ... except MaskValuesError as error:
        ...     error.fix, error.files
        ({'ignore_index': 255}, ['masks[0]'])
    """

    def __init__(self, message, *, values, files, fix):
        super().__init__(message)
        self.values, self.files, self.fix = list(values), list(files), dict(fix)


def _value_counts(array):
    """``{value: pixel count}`` of an array, sorted by value."""
    values, counts = np.unique(array, return_counts=True)
    return dict(zip(values.tolist(), counts.tolist()))


def _too_sparse(values):
    """Whether the class indices ``values`` (sorted integers >= 0) leave at least as many
    indices unused below their largest as they use: the rule of :func:`mask_classes`."""
    n = int(values[-1]) + 1
    return n > 2 and n - len(values) >= len(values)


def _fix_for(counts):
    """``(advice, fix)`` for mask values that do not read as wanted; ``counts`` is
    ``{value: pixels}``. The one rule that words every mask-values error:

    - class indices that :func:`mask_classes` accepts: ``mask_mode='multiclass'``;
    - one high value above classes that would be fine without it (0, 1, 2 and 255):
      a void label, ``ignore_index=`` that value;
    - 0 and 255 (or 65535) only: binary masks, ``mask_mode='binary'``;
    - ``NEAR_BINARY`` of the pixels in the bottom or top quarter of the values' range:
      binary masks with noisy edges, ``threshold=`` the middle of the range;
    - else up to 8 values, each a class: a gray ``palette``; more: renumber them.
    """
    values = sorted(counts)
    integral = all(float(v).is_integer() and v >= 0 for v in values)
    if integral and not _too_sparse(values):
        return ("Pass mask_mode='multiclass' to take them as class indices",
                {"mask_mode": "multiclass"})
    if integral and len(values) >= 3 and not _too_sparse(values[:-1]):
        void = int(values[-1])
        return (f"If {void} marks unlabelled pixels, pass ignore_index={void}",
                {"ignore_index": void})
    if set(values) in ({0, 255}, {0, 65535}):
        return "They are binary masks: pass mask_mode='binary'", {"mask_mode": "binary"}
    low, high = values[0], values[-1]
    quarter = (high - low) / 4
    ends = sum(n for v, n in counts.items() if v <= low + quarter or v >= high - quarter)
    if ends >= NEAR_BINARY * sum(counts.values()):
        middle = int(low + high) // 2 if integral else (low + high) / 2
        look = (f"binary masks of {low:g} and {high:g}" if len(values) == 2 else
                "binary masks with in-between values at the edges (JPEG, smoothing)")
        return (f"They look like {look}: pass threshold={middle:g} to read the pixels above "
                f"{middle:g} as 1", {"threshold": middle})
    if integral and len(values) <= 8:
        palette = {(int(v),) * 3: i for i, v in enumerate(values)}
        return (f"If each value is a class, number them with palette={palette}",
                {"palette": palette})
    return "Renumber the classes 0, 1, 2, ... in the files", {}


def _count(items, noun):
    """``1 mask`` / ``3 masks``."""
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


def _files_text(files, limit=3):
    """``the mask a.png`` / ``the masks a.png, b.png and 4 more``, and the verb."""
    if len(files) == 1:
        return f"the mask {files[0]}", "has"
    shown = ", ".join(map(str, files[:limit]))
    more = f" and {len(files) - limit} more" if len(files) > limit else ""
    return f"the masks {shown}{more}", "have"


def _auto_mode(values, dtype):
    if _is_binary(values, dtype):
        return "binary"
    if _is_classes(values):
        return "multiclass"
    return None


def _thresholded(gray, threshold, path):
    """A gray mask's pixels above ``threshold`` as 1, the rest 0: float32 ``(H, W, 1)``."""
    if np.issubdtype(gray.dtype, np.integer):
        top = np.iinfo(gray.dtype).max
        if threshold >= top:
            raise ValueError(
                f"threshold={threshold:g} is not below {top}, the top value of the mask "
                f"{path}: every pixel would read as 0 (for 8-bit masks, e.g. threshold=127)"
            )
    values = _unique(gray, path)
    if set(values) == {0, 1} and threshold >= 1:
        raise ValueError(
            f"the mask {path} holds 0 and 1 only, which threshold={threshold:g} reads as all "
            f"0: it is a binary mask already; read it without threshold="
        )
    return (gray > threshold).astype(np.float32)[..., None]


def _convert_mask(gray, colours, mode, palette, path, threshold=None):
    """One mask file's pixels in the package's convention, ``(H, W, 1)``."""
    if mode == "auto" and palette is not None:
        mode = "palette"
    if mode == "palette":
        if colours is None:
            colours = np.repeat(gray[..., None], 3, axis=-1)
        return _palette_classes(colours, palette, path)[..., None]
    if gray is None:
        raise ValueError(
            f"the mask {path} is colour-coded; pass mask_mode='palette' and "
            f"palette={{(r, g, b): class, ...}}"
        )
    if threshold is not None:
        return _thresholded(gray, threshold, path)
    values = _unique(gray, path)
    if mode == "auto":
        mode = _auto_mode(values, gray.dtype)
    if mode == "binary" and _is_binary(values, gray.dtype):
        return (gray > 0).astype(np.float32)[..., None]
    if mode == "multiclass":
        if all(float(v).is_integer() and v >= 0 for v in values):
            return gray.astype(np.int32)[..., None]
        raise ValueError(
            f"the mask {path} has the values {_values_text(values)}; expected class "
            f"indices (integers >= 0)"
        )
    expected = "binary values (0/255 or 0/1)" if mode == "binary" else (
        f"binary values (0/255 or 0/1) or class indices below {AUTO_MAX_CLASSES}")
    advice, fix = _fix_for(_value_counts(gray))
    raise MaskValuesError(
        f"the mask {path} has the values {_values_text(values)}; expected {expected}. "
        f"{advice}", values=values, files=[path], fix=fix)


def read_mask(path, mode="auto", palette=None, *, threshold=None, ignore_index=None):
    """Read a mask file in the package's convention.

    Args:
        path: a PNG, TIFF, GIF or BMP mask. A JPEG's lossy values are refused, with
            the advice to pass ``threshold=``.
        mode: ``"binary"``: values 0/255 (0/65535) or 0/1, to float32 {0, 1}.
            ``"multiclass"`` (also called ``"classes"``): integer class indices as
            stored, to int32.
            ``"palette"``: colours mapped through ``palette`` to int32 classes.
            ``"auto"``: ``"palette"`` if a palette is given, ``"multiclass"`` if
            ``ignore_index`` is, else ``"binary"`` for binary values and
            ``"multiclass"`` for values below ``AUTO_MAX_CLASSES``.
            A palette-mode image (PIL "P") reads as its gray colours if all are
            gray, else as its palette indices.
        palette: ``{(r, g, b): class}`` for ``mode="palette"``.
        threshold: for near-binary gray masks (JPEG masks, anti-aliased edges): the
            pixels above ``threshold``, in the file's own scale (127 for an 8-bit
            mask), become 1, the others 0: a binary float32 mask. Only with
            ``mode="auto"`` or ``"binary"``; a mask of 0 and 1 only is refused with
            ``threshold >= 1`` (it would read as all 0).
        ignore_index: the value of unlabelled ("void") pixels, e.g. 255: the mask is
            read as class indices (int32) and those pixels keep the value, which the
            package's losses and metrics leave out (they count labels in
            ``[0, n_classes)`` only). Not with ``mode="binary"`` or ``threshold``.

    Returns:
        ``(height, width, 1)``: float32 {0, 1} (binary) or int32 (classes).

    Raises:
        MaskValuesError: (a ValueError) naming the file, for values that fit neither
            mode; its message and its ``fix`` say what to pass instead.
        ValueError: naming the file: unreadable, animated, a colour not in
            ``palette``, values that do not fit ``mode`` (listed); or bad arguments.

    Example:
        >>> import tempfile, numpy as np
        >>> path = Path(tempfile.mkdtemp()) / "mask.png"
        >>> Image.fromarray(np.array([[0, 255, 255]], np.uint8)).save(path)
        >>> mask = read_mask(path)
        >>> mask.shape, mask.dtype, mask.ravel().tolist()
        ((1, 3, 1), dtype('float32'), [0.0, 1.0, 1.0])
        >>> read_mask(path, "multiclass").ravel().tolist()
        [0, 255, 255]
        >>> Image.fromarray(np.array([[3, 250, 128, 127]], np.uint8)).save(path)
        >>> read_mask(path, threshold=127).ravel().tolist()  # a JPEG-like mask
        [0.0, 1.0, 1.0, 0.0]
        >>> Image.fromarray(np.array([[0, 1, 255]], np.uint8)).save(path)
        >>> read_mask(path, ignore_index=255).ravel().tolist()  # 255: unlabelled
        [0, 1, 255]
    """
    mode = _check_mode(mode, palette, threshold, ignore_index)
    gray, colours = _mask_pixels(path)
    return _convert_mask(gray, colours, mode, palette, path, threshold)


def check_ignore_index(ignore_index):
    """Refuse an ``ignore_index`` (the value of unlabelled pixels) that is not an integer
    >= 0; None (no unlabelled pixels) passes. The one rule of the loaders and of
    :mod:`keras_unet.weights`.

    Example:
        >>> check_ignore_index(255)
        >>> check_ignore_index(-1)
        Traceback (most recent call last):
        ValueError: ignore_index must be an integer >= 0, the value of unlabelled pixels (e.g. 255); got -1
    """
    if ignore_index is None:
        return
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, numbers.Integral) \
            or ignore_index < 0:
        raise ValueError(
            f"ignore_index must be an integer >= 0, the value of unlabelled pixels "
            f"(e.g. 255); got {ignore_index!r}"
        )


def _check_mode(mode, palette, threshold=None, ignore_index=None):
    """The checked ``mask_mode`` (its alias resolved) of these arguments."""
    mode = _MODE_ALIASES.get(mode, mode)
    if mode not in MASK_MODES:
        choices = ", ".join(map(repr, MASK_MODES))
        raise ValueError(f"mask_mode must be one of {choices}; got {mode!r}")
    if mode == "palette" and palette is None:
        raise ValueError("mask_mode='palette' needs palette={(r, g, b): class, ...}")
    if palette is not None:
        _check_palette(palette)
    if threshold is not None:
        number = isinstance(threshold, numbers.Real) and not isinstance(threshold, bool)
        if not number or not np.isfinite(threshold) or threshold < 0:
            raise ValueError(
                f"threshold must be a number >= 0 in the masks' own scale (e.g. 127 for "
                f"8-bit masks); got {threshold!r}"
            )
        if ignore_index is not None:
            raise ValueError(
                "give threshold= (binary masks) or ignore_index= (class masks), not both")
        if mode in ("multiclass", "palette") or palette is not None:
            raise ValueError(
                f"threshold= reads binary masks; it does not go with "
                f"{'palette=' if palette is not None else f'mask_mode={mode!r}'}"
            )
        return "binary"
    if ignore_index is not None:
        check_ignore_index(ignore_index)
        if mode == "binary":
            raise ValueError(
                "ignore_index= keeps unlabelled pixels in class-index masks; it does not go "
                "with mask_mode='binary': use mask_mode='multiclass'"
            )
        return "multiclass" if mode == "auto" and palette is None else mode
    return mode


def mask_classes(masks, ignore_index=None, *, names=None, n_classes=None):
    """The number of classes that class-index masks use, from the values in them.

    The classes are ``0 .. k-1``, ``k - 1`` the largest value present (not counting
    ``ignore_index``); at least 2. The values must be dense: if the indices below the
    largest that no mask uses are as many as those used (or more), the masks are not
    what a class-index mask is, and a :class:`MaskValuesError` says what they look
    like and what to pass:

    - 0, 1 and a void border of 255: ``ignore_index=255``;
    - 0 and 128, or values 0-12 and 240-255 (a JPEG mask): binary masks,
      ``threshold=`` the middle of the range (``mask_mode='binary'`` for 0/255);
    - a few spread values (0, 85, 170, 255): a gray ``palette`` numbering them.

    ``ignore_index`` must be above every class (the losses and metrics leave out the
    labels outside ``[0, n_classes)``).

    ``n_classes`` says how many classes there are when the masks do not show it (a
    dataset of 21 classes of which these masks use 0 and 15): the values are then not
    checked for sparseness, but every one must be below ``n_classes`` (or be
    ``ignore_index``), since the losses and metrics would silently leave out the
    pixels of a class at or above it.

    Args:
        masks: integer (or bool) masks, an array ``(n, ...)`` or a list of arrays.
        ignore_index: the value of unlabelled pixels, not a class; None for none.
        names: a name for each mask (its file) for the messages; else ``masks[i]``.
        n_classes: the number of classes (an int >= 2), or None to count them from
            the values.

    Returns:
        the number of classes, an int >= 2 (``n_classes`` if given).

    Raises:
        MaskValuesError: (a ValueError) for sparse values, as above.
        ValueError: for float masks, negative values, every pixel ignored, an
            ``ignore_index`` that is one of the classes, or values at or above
            ``n_classes`` (naming them, the files and the share of pixels).

    Example:
        >>> mask_classes([np.array([[0, 1], [2, 2]]), np.array([[0, 3]])])
        4
        >>> mask_classes([np.array([[0, 1, 255]])], ignore_index=255)
        2
        >>> mask_classes([np.array([[0, 15, 15]])], n_classes=21)  # sparse, but said
        21
        >>> mask_classes([np.array([[0, 128]])])
        Traceback (most recent call last):
        ...
        keras_unet.images.MaskValuesError: the mask masks[0] has the values 0, 128, which as class indices make 129 classes, 127 of them never used. They look like binary masks of 0 and 128: pass threshold=64 to read the pixels above 64 as 1
    """
    names = [f"masks[{i}]" for i in range(len(masks))] if names is None else list(names)
    if n_classes is not None and (isinstance(n_classes, bool) or not isinstance(
            n_classes, (int, np.integer)) or n_classes < 2):
        raise ValueError(f"n_classes must be an integer >= 2 (or None to count the classes "
                         f"from the masks); got {n_classes!r}")
    if n_classes is not None and ignore_index is not None and ignore_index < n_classes:
        raise ValueError(
            f"ignore_index={ignore_index} is one of the n_classes={n_classes} classes (0 to "
            f"{n_classes - 1}): the ignored value must be above every class (e.g. "
            f"ignore_index=255)")
    counts, held = {}, []
    for name, mask in zip(names, masks):
        mask = np.asarray(mask)
        if not (mask.dtype == bool or np.issubdtype(mask.dtype, np.integer)):
            raise ValueError(
                f"{name} has {mask.dtype} values; mask_classes counts the classes of "
                f"class-index (integer) masks, a float mask is binary"
            )
        own = _value_counts(mask)
        if own and min(own) < 0:
            raise ValueError(f"{name}: class indices must be >= 0; found {min(own)}")
        own.pop(ignore_index, None)
        for value, n in own.items():
            counts[value] = counts.get(value, 0) + n
        held.append((name, set(own)))
    if not counts:
        raise ValueError(f"every pixel of the masks is ignore_index={ignore_index}: no class")
    values = sorted(counts)
    if n_classes is not None:
        return _within(counts, held, n_classes, ignore_index)
    if ignore_index is not None and ignore_index < values[-1]:
        raise ValueError(
            f"ignore_index={ignore_index} is below the class {values[-1]} of the masks: "
            f"the ignored value must be above every class (e.g. ignore_index=255)"
        )
    if _too_sparse(values):
        stray = {v for v in values if v >= len(values)}
        files = [name for name, own in held if own & stray]
        where, verb = _files_text(files)
        advice, fix = _fix_for(counts)
        n = values[-1] + 1
        raise MaskValuesError(
            f"{where} {verb} the values {_values_text(values)}, which as class indices make "
            f"{n} classes, {n - len(values)} of them never used. {advice}",
            values=values, files=files, fix=fix)
    return max(int(values[-1]) + 1, 2)


def _within(counts, held, n_classes, ignore_index):
    """``n_classes`` if every value of ``counts`` (``{value: pixels}``) is a class below
    it; else the error of :func:`mask_classes` naming the values above."""
    above = [v for v in sorted(counts) if v >= n_classes]
    if not above:
        return int(n_classes)
    files = [name for name, own in held if own & set(above)]
    where, verb = _files_text(files)
    share = 100 * sum(counts[v] for v in above) / sum(counts.values())
    share = f"{share:.0f}%" if share >= 1 else f"{share:.1g}%"
    classes = "0 and 1" if n_classes == 2 else f"0 to {n_classes - 1}"
    void = "" if ignore_index is not None or len(above) > 1 else (
        f", or ignore_index={above[0]} if {above[0]} marks unlabelled pixels")
    raise ValueError(
        f"{where} {verb} the values {_values_text(sorted(counts))}, but n_classes="
        f"{n_classes} makes the classes {classes}: the pixels of "
        f"{_values_text(above)} ({share} of them) would be left out of training and "
        f"scores. Pass n_classes={above[-1] + 1}{void}")


def check_not_empty(masks, ignore_index=None):
    """A one-line warning if every mask is all background, else None.

    A mask set with no foreground pixel (nothing above 0, ``ignore_index`` not
    counted) trains a model to predict nothing: the caller should say so (the
    ``keras-unet`` command warns) or stop.

    Example:
        >>> check_not_empty([np.zeros((2, 2)), np.zeros((2, 2))])
        'every mask is all background (2 masks, no pixel above 0): a model trained on them learns to predict nothing; check the masks and mask_mode'
        >>> check_not_empty([np.zeros((2, 2)), np.eye(2)]) is None
        True
    """
    for mask in masks:
        mask = np.asarray(mask)
        if np.any((mask > 0) & (mask != ignore_index) if ignore_index is not None else mask > 0):
            return None
    ignored = "" if ignore_index is None else f" but ignore_index={ignore_index}"
    return (f"every mask is all background ({_count(masks, 'mask')}, no pixel above 0"
            f"{ignored}): a model trained on them learns to predict nothing; check the "
            f"masks and mask_mode")


# ---------------------------------------------------------------------- folders


def stack_or_list(arrays):
    """One ``(n, ...)`` array if all have one shape, else the list."""
    if len({a.shape for a in arrays}) == 1:
        return np.stack(arrays)
    return list(arrays)


def image_files(folder, argument="folder"):
    """The image files of ``folder`` as ``{stem: path}``, sorted; hidden files are
    skipped. A missing or empty folder, a file that is not an image, or two images
    with one stem is a ValueError starting with ``argument`` and the folder.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / "b.png").write_bytes(b""), (folder / "a.tif").write_bytes(b"")
        >>> image_files(folder)
        {'a': PosixPath('.../a.tif'), 'b': PosixPath('.../b.png')}
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{argument} {folder} is not a folder")
    files = [p for p in sorted(folder.iterdir()) if p.is_file() and not p.name.startswith(".")]
    others = [p.name for p in files if p.suffix.lower() not in IMAGE_SUFFIXES]
    if others:
        raise ValueError(
            f"{argument} {folder} holds files that are not images: {', '.join(others[:10])} "
            f"(image suffixes: {' '.join(IMAGE_SUFFIXES)})"
        )
    if not files:
        raise ValueError(f"{argument} {folder} holds no images")
    by_stem = {}
    for path in files:
        if path.stem in by_stem:
            raise ValueError(
                f"{argument} {folder} holds two images named {path.stem!r}: "
                f"{by_stem[path.stem].name} and {path.name}"
            )
        by_stem[path.stem] = path
    return by_stem


def pair_files(images_dir, masks_dir, *, names=("images_dir", "masks_dir"),
               unmatched=("images without a mask", "masks without an image")):
    """``[(image, mask)]`` paths matched by file stem; a mask may also be named
    ``<stem>_mask.*``. Unmatched files on either side are a ValueError listing them;
    ``names`` and ``unmatched`` word the messages (e.g. predictions against truths)."""
    images = image_files(images_dir, names[0])
    masks = image_files(masks_dir, names[1])
    pairs, used, lonely = [], set(), []
    for stem, image in images.items():
        found = [s for s in (stem, f"{stem}_mask") if s in masks]
        if len(found) == 2:
            raise ValueError(
                f"the image {image.name} has two masks: {masks[stem].name} and "
                f"{masks[found[1]].name}"
            )
        if found:
            used.add(found[0])
            pairs.append((image, masks[found[0]]))
        else:
            lonely.append(image.name)
    unused = [masks[s].name for s in masks if s not in used]
    if lonely or unused:
        parts = []
        if lonely:
            parts.append(f"{unmatched[0]} in {masks_dir}: {', '.join(lonely[:10])}")
        if unused:
            parts.append(f"{unmatched[1]} in {images_dir}: {', '.join(unused[:10])}")
        raise ValueError("; ".join(parts) + " (pairs are matched by file stem, or <stem>_mask)")
    return pairs


def check_same_size(image, mask, image_path, mask_path):
    if image.shape[:2] != mask.shape[:2]:
        raise ValueError(
            f"the image {image_path} is {image.shape[1]}x{image.shape[0]} but its mask "
            f"{mask_path} is {mask.shape[1]}x{mask.shape[0]} (width x height)"
        )


def _folder_mode(raw, palette):
    """The one ``mask_mode`` that ``"auto"`` gives a whole folder of masks."""
    if palette is not None:
        return "palette"
    values = set()
    for (gray, _), path in raw:
        if gray is None:
            return "binary"  # _convert_mask names the colour mask
        values.update(_unique(gray, path))
    values = sorted(values)
    if all(_is_binary(_unique(gray, path), gray.dtype) for (gray, _), path in raw):
        return "binary"  # one encoding, or 0/1 and 0/255 mixed: _mixed_binary says so
    if _is_classes(values):
        return "multiclass"
    counts = {}
    for (gray, _), _ in raw:
        for value, n in _value_counts(gray).items():
            counts[value] = counts.get(value, 0) + n
    files = [path for (gray, _), path in raw if not _is_classes(_unique(gray, path))]
    where, verb = _files_text(files)
    advice, fix = _fix_for(counts)
    raise MaskValuesError(
        f"{where} {verb} the values {_values_text(values)}; with mask_mode='auto' masks "
        f"must all be binary (0/255 or 0/1) or class indices below {AUTO_MAX_CLASSES}. "
        f"{advice}", values=values, files=files, fix=fix)


def _mixed_binary(raw, masks_dir):
    """Warn once if binary masks come in two encodings, 0/1 and 0/255 (or 0/65535)."""
    ones, full = [], []
    for (gray, _), path in raw:
        values, top = set(_unique(gray, path)), _full_scale(gray.dtype)
        if top > 1 and top in values:
            full.append(path.name)
        elif 1 in values:
            ones.append(path.name)
    if ones and full:
        def names(files):
            return ", ".join(files[:3]) + (", ..." if len(files) > 3 else "")

        warnings.warn(
            f"{masks_dir} mixes two binary encodings: {_count(ones, 'mask')} 0/1 "
            f"({names(ones)}) and {len(full)} 0/255 ({names(full)}); all are read as "
            f"binary masks of 0 and 1", stacklevel=3)


def _same_channels(images):
    """Gray images repeated to RGB if any image is RGB."""
    if len({image.shape[-1] for image in images}) > 1:
        return [np.repeat(i, 3, axis=-1) if i.shape[-1] == 1 else i for i in images]
    return images


def from_folder(images_dir, masks_dir, *, mask_mode="auto", palette=None, threshold=None,
                ignore_index=None, n_classes=None):
    """Read a folder of images and a folder of masks, paired by file stem.

    A mask pairs with the image of the same stem, whatever its suffix (``cat.jpg``
    with ``cat.png``), or is named ``<stem>_mask.*``. Hidden files (``.DS_Store``)
    are skipped; any other file that is not an image is an error. Images are read with
    :func:`read_image`, masks with :func:`read_mask`; if some images are gray and
    others RGB, the gray ones are repeated to RGB.

    Args:
        images_dir: folder of images (PNG, JPEG, TIFF, BMP, GIF; 8/16-bit; gray, RGB
            or opaque RGBA).
        masks_dir: folder of masks, one per image.
        mask_mode: ``"auto"``, ``"binary"``, ``"multiclass"`` (or ``"classes"``) or
            ``"palette"``, as for :func:`read_mask`; ``"auto"`` decides once for the
            whole folder: binary if every mask is binary, else class indices. A folder
            that mixes 0/1 masks with 0/255 ones is read as binary masks (both
            encodings are unambiguous), with a warning that names the files of each.
        palette: ``{(r, g, b): class}`` for colour-coded masks.
        threshold: for near-binary gray masks (JPEG): the pixels above ``threshold``,
            in each file's own scale (127 for 8-bit), become 1, the rest 0, as for
            :func:`read_mask`.
        ignore_index: the value of unlabelled pixels (e.g. 255): the masks are class
            indices, those pixels keep the value and are not a class.
        n_classes: the number of classes of class-index or palette masks, when the
            masks do not use them all (21 classes, of which the folder uses 0 and 15):
            every value must then be below it (or be ``ignore_index``); None to count
            them, as :func:`mask_classes` does.

    Class-index masks (``"multiclass"``) are checked as a whole with
    :func:`mask_classes`: values that would make classes no mask uses (0/128, a JPEG
    mask's 0-12 and 240-255, a 255 border without ``ignore_index``) are a
    :class:`MaskValuesError` naming the files and what to pass.

    Returns:
        a :class:`Split` (``fov`` None), in the sorted order of the image stems.

    Raises:
        ValueError: naming the file(s): a missing folder, an empty folder, a file that
            is not an image, an image without a mask or a mask without an image, an
            image and mask of different sizes, an unreadable or animated image, mask
            values that do not fit ``mask_mode`` (a :class:`MaskValuesError`), a
            colour not in ``palette``.

    Example:
        >>> import tempfile, numpy as np
        >>> root = Path(tempfile.mkdtemp())
        >>> (root / "images").mkdir(); (root / "masks").mkdir()
        >>> Image.fromarray(np.full((4, 6), 128, np.uint8)).save(root / "images/a.png")
        >>> Image.fromarray(np.eye(4, 6, dtype=np.uint8) * 255).save(root / "masks/a.png")
        >>> split = from_folder(root / "images", root / "masks")
        >>> split.images.shape, split.masks.shape, split.masks.dtype, split.names
        ((1, 4, 6, 1), (1, 4, 6, 1), dtype('float32'), ['a'])
        >>> border = np.eye(4, 6, dtype=np.uint8)
        >>> border[0] = 255  # unlabelled pixels
        >>> Image.fromarray(border).save(root / "masks/a.png")
        >>> split = from_folder(root / "images", root / "masks", ignore_index=255)
        >>> split.masks.dtype, np.unique(split.masks).tolist()
        (dtype('int32'), [0, 1, 255])
    """
    mode = _check_mode(mask_mode, palette, threshold, ignore_index)
    pairs = pair_files(images_dir, masks_dir)
    raw = [(_mask_pixels(mask_path), mask_path) for _, mask_path in pairs]
    if mode == "auto":
        mode = _folder_mode(raw, palette)
    images, masks = [], []
    for (image_path, mask_path), ((gray, colours), _) in zip(pairs, raw):
        image = read_image(image_path)
        mask = _convert_mask(gray, colours, mode, palette, mask_path, threshold)
        check_same_size(image, mask, image_path, mask_path)
        images.append(image)
        masks.append(mask)
    if mode == "binary" and threshold is None:
        _mixed_binary(raw, masks_dir)
    if mode == "multiclass" or (mode == "palette" and n_classes is not None):
        mask_classes(masks, ignore_index, names=[path for _, path in pairs],
                     n_classes=n_classes)
    names = [image_path.stem for image_path, _ in pairs]
    return Split(stack_or_list(_same_channels(images)), stack_or_list(masks), names)


