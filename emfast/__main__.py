"""``python -m emfast`` is the ``emfast`` command."""
import sys

from ._cli import main

sys.exit(main())
