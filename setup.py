"""Build the Cython extensions in native/ into the sfu package.

A plain `pip install .` compiles them; a broken build fails the install (no silent
fallback to the pure-Python reference). `SFU_CYTHON_ANNOTATE=1` writes the
annotated HTML next to each .pyx.
"""

import os

from Cython.Build import cythonize
from setuptools import Extension, setup

EXTENSIONS = [
    Extension("sfu.rtp._header_c", ["native/rtp_header.pyx"]),
    Extension("sfu.media._fastpath_c", ["native/fastpath.pyx"]),
    Extension("sfu.media._budget_c", ["native/budget.pyx"]),
]

setup(
    ext_modules=cythonize(
        EXTENSIONS,
        compiler_directives={"language_level": "3", "boundscheck": False, "wraparound": False},
        annotate=os.environ.get("SFU_CYTHON_ANNOTATE") == "1",
    ),
)
