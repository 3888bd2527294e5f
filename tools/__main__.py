"""``python -m ember.tools``: the ``ember`` command line."""

import sys

from ember.tools.cli import main

sys.exit(main())
