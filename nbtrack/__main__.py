"""``python -m nbtrack`` is the ``nbtrack`` command."""

import sys

from nbtrack.cli import main

sys.exit(main())
