"""``python -m docjobs.cli`` is the ``docjobs`` command, as ``python -m docjobs`` is."""

import sys

from docjobs.cli import main

sys.exit(main())
