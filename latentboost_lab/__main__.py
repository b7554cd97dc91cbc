"""``python -m latentboost_lab`` is the same as the ``latentboost-lab`` command."""

from .cli import main

raise SystemExit(main())
