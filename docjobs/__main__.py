"""``python -m docjobs`` is the ``docjobs`` command."""

import sys

from docjobs.cli import main

sys.exit(main())
