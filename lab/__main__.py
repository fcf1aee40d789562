from __future__ import annotations

import sys

from .estate import main

sys.exit(main(sys.argv[1:]))
