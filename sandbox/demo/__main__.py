"""`python -m sandbox.demo [happy|failure|quota|restart]` (same as `python -m bot demo`)."""

from __future__ import annotations

import sys

from sandbox.demo.runner import main

if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1] if len(sys.argv) > 1 else None))
