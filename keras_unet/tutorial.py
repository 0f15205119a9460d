"""What the tutorial notebooks share: their settings and the line that says where and
how long they ran.

Every notebook takes its parameters from environment variables, so that the same
notebook runs at full size on a workstation, in seconds under CI, and with the paper's
configuration on a GPU, without editing a cell:

- ``KERAS_UNET_<NAME>`` sets the parameter ``name`` (``KERAS_UNET_EPOCHS=40``);
- ``KERAS_UNET_FAST=1`` swaps in each notebook's ``fast`` values (tiny data, an epoch
  or two), which is how ``make test`` executes every notebook with nbval.

An explicit ``KERAS_UNET_<NAME>`` wins over both the default and the fast value.
"""

import os
import platform
import time
import types
import warnings
from pathlib import Path

FAST_VARIABLE = "KERAS_UNET_FAST"
PREFIX = "KERAS_UNET_"
SHUFFLE_WARNING = r"`shuffle=True` was passed, but will be ignored"


def fast_mode():
    """True when ``KERAS_UNET_FAST=1``: notebooks and the command shrink their work.

    Example:
        >>> import os
        >>> fast_mode() == (os.environ.get("KERAS_UNET_FAST") == "1")
        True
    """
    return os.environ.get(FAST_VARIABLE) == "1"


def _parse(name, text, default):
    """The environment's ``text`` for parameter ``name``, typed like its default."""
    variable = PREFIX + name.upper()
    if isinstance(default, bool):
        value = text.strip().lower()
        if value not in ("1", "0", "true", "false", "yes", "no"):
            raise ValueError(f"{variable} must be 1/0, true/false or yes/no; got {text!r}")
        return value in ("1", "true", "yes")
    if isinstance(default, (int, float)):
        try:
            return type(default)(text)
        except ValueError:
            kind = "an integer" if isinstance(default, int) else "a number"
            raise ValueError(f"{variable} must be {kind}; got {text!r}") from None
    if text.strip().lower() in ("", "none"):
        return None
    return text


class Settings(types.SimpleNamespace):
    """A notebook's parameters (attributes), where each came from, and a clock."""

    def report(self):
        """One line: how long the notebook has run, on what machine and software.

        The committed notebooks end with it, so a reader knows what their outputs cost.
        """
        minutes = (time.perf_counter() - self._started) / 60
        mode = "fast mode (KERAS_UNET_FAST=1)" if fast_mode() else "default settings"
        print(f"Ran in {minutes:.1f} min with {mode} on {machine()}.")


def settings(fast=None, **defaults):
    """The notebook's parameters: ``defaults``, the ``fast`` values under
    ``KERAS_UNET_FAST=1``, and any ``KERAS_UNET_<NAME>`` environment variable over both.

    Prints a table of the values and where each came from, and starts the clock that
    :meth:`Settings.report` reads. It also silences one harmless warning that every
    tutorial would otherwise print: Keras 3's "``shuffle=True`` was passed, but will be
    ignored" from ``model.fit`` on a ``tf.data.Dataset`` (the datasets of
    :func:`keras_unet.data.make_dataset` are shuffled already).

    Args:
        fast: ``{name: value}`` used instead of the default in fast mode; every name
            must be one of ``defaults``.
        **defaults: ``name=value``; the type of the value (bool, int, float, str or
            None for a path or text) is the type an environment variable is read as.

    Returns:
        a :class:`Settings` with one attribute per parameter.

    Raises:
        ValueError: for a fast name that has no default, or an environment variable
            that does not read as its parameter's type (naming the variable).

    Example:
        >>> import os
        >>> os.environ["KERAS_UNET_EPOCHS"] = "3"
        >>> run = settings(epochs=20, tile=256, data_dir=None, fast={"tile": 64})
        ... # doctest: +NORMALIZE_WHITESPACE
        parameter  value  from
        epochs     3      KERAS_UNET_EPOCHS
        tile       ...
        data_dir   None   default
        >>> run.epochs
        3
        >>> del os.environ["KERAS_UNET_EPOCHS"]
    """
    fast = dict(fast or {})
    unknown = sorted(set(fast) - set(defaults))
    if unknown:
        raise ValueError(f"fast names parameters without a default: {', '.join(unknown)}")
    values, sources = {}, {}
    for name, default in defaults.items():
        variable = PREFIX + name.upper()
        if variable in os.environ:
            values[name] = _parse(name, os.environ[variable], default)
            sources[name] = variable
        elif fast_mode() and name in fast:
            values[name], sources[name] = fast[name], "fast mode"
        else:
            values[name], sources[name] = default, "default"
    rows = [("parameter", "value", "from")] + [(n, repr(values[n]) if isinstance(values[n], str)
                                                 else str(values[n]), sources[n]) for n in values]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    warnings.filterwarnings("ignore", message=SHUFFLE_WARNING, category=UserWarning)
    return Settings(**values, _started=time.perf_counter())


def machine():
    """What this runs on, in words: the accelerator or CPU, and the software versions.

    Example:
        >>> "Keras" in machine()
        True
    """
    import keras

    from keras_unet.training import available_devices

    devices = available_devices()
    gpus = [d for d in devices if "gpu" in d.lower() or "cuda" in d.lower()]
    if gpus:
        where = f"{len(gpus)} GPU ({gpus[0]})"
    else:
        where = f"a {os.cpu_count()}-core {cpu_name()} CPU, no GPU"
    return f"{where}; Keras {keras.__version__}, backend {keras.backend.backend()}"


def cpu_name():
    """The CPU's model name (Linux's /proc/cpuinfo), else the architecture."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
