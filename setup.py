"""Build hook for the compiled verifier in fastpath/.

Everything else about the package lives in pyproject.toml. Set HOOKGATE_NO_EXTENSION=1
to install without a C compiler; hookgate then runs on the pure-Python verifier.
"""

import os

from setuptools import Extension, setup

extensions = []
if os.environ.get("HOOKGATE_NO_EXTENSION") != "1":
    from Cython.Build import cythonize

    extensions = cythonize(
        [
            Extension(
                "hookgate.fastpath._native",
                ["fastpath/_native.pyx"],
                libraries=["crypto"],
                extra_compile_args=["-O2"],
            )
        ],
        compiler_directives={"language_level": "3", "boundscheck": False},
    )

setup(ext_modules=extensions)
