"""pytest runs the notebooks with nbval (``--nbval-lax``, set in pyproject.toml): this makes
them take their QUICK setting (small subsets, few epochs), as the course guide describes.
The kernels nbval starts inherit this environment. ``LATENTBOOST_MODE``, when set, wins over
``LATENTBOOST_QUICK`` (``LATENTBOOST_MODE=medium`` runs the MEDIUM setting, a few minutes per
notebook); ``LATENTBOOST_QUICK=0`` without it runs FULL."""

import os

os.environ.setdefault("LATENTBOOST_QUICK", "1")
