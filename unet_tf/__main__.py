"""``python -m unet_tf``: the ``unet-tf`` command line."""

import sys

from unet_tf.cli import main

sys.exit(main())
