"""``python -m arraykit``: the same as the ``arraykit`` command."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
