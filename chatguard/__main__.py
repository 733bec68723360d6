"""``python -m chatguard`` is the ``chatguard`` command."""

import sys

from .cli import main

sys.exit(main())
