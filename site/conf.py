"""Sphinx configuration of the course site (``python -m latentboost_lab.site`` builds it).

The sources are not in this folder: latentboost_lab.site stages the notebooks (with their saved
outputs: nothing is executed), the course guide, the README and the results pages into a build
folder, in the repository's own layout, and runs Sphinx there with this configuration
(``-c site``). Everything it needs is installed by ``pip install -e ".[site]"``: the theme's
assets and MathJax (sphinx-mathjax-offline) are copied from the installed packages, so the build
and the built site need no network.
"""

from latentboost_lab.site import BRANCH, repository_url

project = "Latent Boost lab"
author = "latentboost_lab developers"
copyright = "latentboost_lab developers (MIT licence)"

extensions = ["myst_nb", "sphinx-mathjax-offline"]
myst_enable_extensions = ["dollarmath", "amsmath"]
# '#what-we-measured' style links of the READMEs, as GitHub writes heading anchors
myst_heading_anchors = 3
nb_execution_mode = "off"  # the saved outputs, as they are
nb_merge_streams = True
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
# the READMEs start at '#' and jump levels in places; GitHub shows them the same way
suppress_warnings = ["myst.header"]

html_theme = "sphinx_book_theme"
html_title = "Latent Boost lab"
html_last_updated_fmt = ""
html_theme_options = {
    # the course's copy of the repository: pyproject.toml, [project.urls] Repository
    "repository_url": repository_url(),
    "repository_branch": BRANCH,
    "path_to_docs": "",
    "use_repository_button": True,
    "use_download_button": True,
    "launch_buttons": {"colab_url": "https://colab.research.google.com"},
    "show_toc_level": 2,
}
