"""`python -m cli ...` runs the `filpy` command."""

import sys

from cli.main import main

sys.exit(main())
