"""``python -m fastdecay``: the same command line as the ``fastdecay`` console script."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
