"""`python -m netspec` is the `netspec` command."""

import sys

from .cli import main

sys.exit(main())
