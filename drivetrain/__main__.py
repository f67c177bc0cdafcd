"""``python -m drivetrain``: the ``drivetrain`` command line."""

import sys

from drivetrain.cli import main

sys.exit(main())
