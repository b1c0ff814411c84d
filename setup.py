"""The one compiled part of asm: the pooling kernel (asm/ops/pool.c, plain C loaded with
ctypes by asm/ops/kernel.py). Everything else is declared in pyproject.toml.

``pip install -e .`` builds it in place; ``python setup.py build_ext --inplace`` rebuilds it.
It is optional: without a C compiler the install still succeeds and asm runs the same maths
as numpy / torch code (asm.ops.kernel.describe() says which).
"""

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class BuildKernel(build_ext):
    """Optimise for speed, portably (no -march=native: the build must run on other CPUs)."""

    def build_extensions(self) -> None:
        flags = ["/O2"] if self.compiler.compiler_type == "msvc" else ["-O3", "-std=c99"]
        for ext in self.extensions:
            ext.extra_compile_args = flags
        super().build_extensions()


setup(
    ext_modules=[Extension("asm.ops._kernel", ["asm/ops/pool.c"], optional=True)],
    cmdclass={"build_ext": BuildKernel},
)
