"""``python -m fastgd``: the ``fastgd`` command (see `fastgd.cli`)."""

import sys

from .cli import main

sys.exit(main())
