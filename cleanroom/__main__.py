"""``python -m cleanroom``: the same CLI as the ``cleanroom`` command (cleanroom/cli.py)."""

from cleanroom.cli import main

raise SystemExit(main())
