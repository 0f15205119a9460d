"""keras_unet: the 2015 U-Net (Ronneberger, Fischer, Brox) for Keras 3.

Example:
    >>> from keras_unet import build_unet
    >>> build_unet((572, 572, 1), n_classes=2, padding="valid").count_params()
    31030658
"""

import importlib

__version__ = "0.1.0"

# Public name -> its module, imported on first use: `import keras_unet` starts no Keras backend.
_EXPORTS = {
    "build_unet": "keras_unet.model",
    "output_size": "keras_unet.model",
    "valid_input_sizes": "keras_unet.model",
    "receptive_border": "keras_unet.model",
    "unet_config": "keras_unet.model",
    "predict_tiled": "keras_unet.inference",
    "compile_unet": "keras_unet.training",
    "set_mixed_precision": "keras_unet.training",
    "border_weight_map": "keras_unet.weights",
}
_SUBMODULES = ("model", "losses", "metrics", "weights", "evaluation", "training", "datasets",
               "augment", "data", "inference", "plan", "viz", "tutorial", "cli")

__all__ = ["__version__", *_EXPORTS, *_SUBMODULES]


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"keras_unet.{name}")
    raise AttributeError(f"module 'keras_unet' has no attribute {name!r}")


def __dir__():
    return __all__
