"""`sovereign-watch` / `python -m bot`: parse the command line, run it, map errors to exit codes."""

from __future__ import annotations

import sys

from bot.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
