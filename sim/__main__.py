"""Allow ``python -m sim``, the same as the ``drainsim`` command."""

import sys

from sim.cli import main

sys.exit(main())
