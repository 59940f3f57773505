"""Builds the optional C accelerator of the term codec (``philipjose.term._speedups``).

Everything else about the package is in ``pyproject.toml``. Without a working C compiler the
extension is skipped (``optional=True``) and the pure-Python codec is used: see ``docs/terms.md``.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "philipjose.term._speedups",
            sources=["philipjose/term/_speedups.c"],
            optional=True,
        )
    ]
)
