"""`python -m release`."""

from release.cli import main

raise SystemExit(main())
