"""Runs the code cells of notebooks in one Python process, one fresh namespace per notebook, and
prints one JSON line per notebook: how many code cells ran and the first error (cell index,
exception type, message), or none.

``tests/test_course.py`` uses it to run the instructor versions of the assignments (and so every
notebook's own asserts) on the digits fallback: one process and one ``import torch`` for all of
them, where a kernel per notebook (nbval, nbconvert) spends most of a digits run starting up.
Magics (``%matplotlib inline``) are turned into Python by IPython's transformer and ignored.

Usage: ``python tests/_notebook_runner.py NOTEBOOK.ipynb [...]`` (the environment chooses the
setting: LATENTBOOST_MODE, LATENTBOOST_TUTORIAL_DATA).
"""

import json
import os
import sys
import time
import traceback

os.environ.setdefault("MPLBACKEND", "Agg")


class _Shell:
    """What ``get_ipython()`` returns here: magics do nothing."""

    def run_line_magic(self, *args, **kwargs):
        return None

    def run_cell_magic(self, *args, **kwargs):
        return None


def run(path: str) -> dict:
    import matplotlib.pyplot as plt
    import nbformat
    from IPython.core.inputtransformer2 import TransformerManager

    notebook = nbformat.read(path, as_version=4)
    transform = TransformerManager().transform_cell
    namespace = {"__name__": "__main__", "get_ipython": _Shell}
    shell = _Shell()
    namespace["get_ipython"] = lambda: shell
    started = time.perf_counter()
    ran = 0
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        try:
            exec(compile(transform(cell.source), f"{path}[{index}]", "exec"), namespace)
        except BaseException as err:  # noqa: BLE001 (reported, not hidden)
            plt.close("all")
            return {"path": path, "ran": ran, "seconds": time.perf_counter() - started,
                    "error": {"cell": index, "type": type(err).__name__, "message": str(err)[:500],
                              "source": cell.source[:300],
                              "traceback": traceback.format_exc()[-1500:]}}  # fmt: skip
        ran += 1
        plt.close("all")
    return {"path": path, "ran": ran, "seconds": time.perf_counter() - started, "error": None}


if __name__ == "__main__":
    for notebook_path in sys.argv[1:]:
        print(json.dumps(run(notebook_path)), flush=True)
