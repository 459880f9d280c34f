"""``python -m hhlib`` (and ``torchrun -m hhlib``): the ``hhlib`` console command (hhlib.cli)."""

import sys

from hhlib.cli import main

sys.exit(main())
