"""``python -m ccrm_async``: the ``ccrm-async`` command line."""

import sys

from .cli import main

sys.exit(main())
