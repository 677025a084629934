"""``python -m starter.dev`` (what ``make run`` runs): the whole embedded stack until Ctrl-C."""

import sys

from starter.dev.stack import main

sys.exit(main())
