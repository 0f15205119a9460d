"""``python -m keras_unet`` is the ``keras-unet`` command."""

import sys

from keras_unet.cli import main

sys.exit(main())
