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
                # OpenSSL 3.0 deprecates the SHA256_* calls that the verifier
                # uses. openssl.pxd explains why it uses them anyway.
                define_macros=[("OPENSSL_SUPPRESS_DEPRECATED", None)],
                extra_compile_args=["-O2"],
            )
        ],
        compiler_directives={"language_level": "3", "boundscheck": False},
    )

setup(ext_modules=extensions)
