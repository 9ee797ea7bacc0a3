"""``python -m simclr_tf.evaluate``: see :mod:`simclr_tf.evaluate.cli`."""

import sys

from simclr_tf.evaluate.cli import main

sys.exit(main())
