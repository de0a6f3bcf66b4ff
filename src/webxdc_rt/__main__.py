"""`python -m webxdc_rt` runs the `webxdc-rt` command."""

import sys

from .cli import main

sys.exit(main())
