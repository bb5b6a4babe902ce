"""`python -m zoo.server`: same as the zoo-server console script."""

import sys

from zoo.server.app import main

sys.exit(main())
