"""pytest runs the notebooks with nbval (``--nbval-lax``, set in pyproject.toml): this makes
them take their QUICK setting (small subsets, few epochs), as the course guide describes.
The kernels nbval starts inherit this environment. Set LATENTBOOST_QUICK=0 to run FULL."""

import os

os.environ.setdefault("LATENTBOOST_QUICK", "1")
