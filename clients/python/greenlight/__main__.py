"""python3 -m greenlight: the command line (see greenlight/cli.py)."""

import sys

from greenlight.cli import main

if __name__ == "__main__":
    sys.exit(main())
