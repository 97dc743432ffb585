"""``python -m bnorder`` is the ``bnorder`` command."""

import sys

from bnorder.cli import main

sys.exit(main())
