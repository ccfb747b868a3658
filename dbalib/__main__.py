"""``python -m dbalib``: see ``dbalib.cli``."""

import sys

from .cli import main

sys.exit(main())
