"""`python -m oncall_tui`: the same as the `oncall-tui` command."""

import sys

from oncall_tui.cli import main

sys.exit(main())
