"""Allow ``python -m sim``, the same as the ``drainsim`` command."""

import sys

from sim.cli import main

# The guard keeps worker processes started with "spawn" from running the CLI again.
if __name__ == "__main__":
    sys.exit(main())
