"""`python -m zoo.server`: same as the zoo-server console script."""

from zoo.server.cli import main

main()
