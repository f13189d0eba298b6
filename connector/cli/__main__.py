"""`python -m connector.cli`: the same as the `stagesync` command."""

import sys

from connector.cli import main

sys.exit(main())
