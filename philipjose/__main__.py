"""``python -m philipjose``: the command-line interface."""

from philipjose.cli import main

raise SystemExit(main())
