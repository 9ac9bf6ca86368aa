"""`python -m pmdb` runs the pmdb command."""

import sys

from pmdb.cli.main import main

sys.exit(main())
