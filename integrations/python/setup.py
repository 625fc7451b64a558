"""Build hook: records the checkout this package is built from in nequip_rs/_checkout.py (in the
build output only), so that an installed copy without a bundled library can still find
<checkout>/target/release/libnequip_capi.so. Metadata: pyproject.toml."""
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


class BuildPy(build_py):
    def run(self):
        super().run()
        checkout = HERE.parents[1]  # <checkout>/integrations/python
        if (checkout / "integrations" / "capi").is_dir():
            out = Path(self.build_lib) / "nequip_rs" / "_checkout.py"
            out.write_text(
                '"""Written at build time: the nequip-rs checkout this package was built from."""\n'
                f"CHECKOUT = {str(checkout)!r}\n"
            )


setup(cmdclass={"build_py": BuildPy})
