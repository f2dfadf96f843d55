"""`python -m connector` is the `connector` console script."""

from connector.cli import main

main()
