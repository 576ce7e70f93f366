"""Package layout: two source roots whose import paths match their file paths.

* ``benchmark/vibench/`` is the ``vibench`` package (the engine);
* ``methods/vibench_methods/`` is the ``vibench_methods`` package (the built-in methods, registered
  through the ``vibench.methods`` entry-point group like any third-party method).

The declarative folders at the top of the repository stay the one source of truth and ship as
package data of ``vibench`` (``vibench/_data/``) in a built wheel: ``protocols/*.yaml`` and the
papers' reported numbers ``results/reported/*.yaml``. In a checkout (editable install)
``vibench.paths`` reads them in place. Metadata lives in pyproject.toml.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import find_namespace_packages, find_packages, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).parent
#: top-level folder -> sub-folder of vibench/_data/ in a built wheel
SHIPPED = {"protocols": "protocols", "results/reported": "reported"}


class BuildWithData(build_py):
    """build_py that also copies the shipped top-level folders into ``vibench/_data/``."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        for source, target in SHIPPED.items():
            dest = Path(self.build_lib) / "vibench" / "_data" / target
            dest.mkdir(parents=True, exist_ok=True)
            for path in sorted((HERE / source).glob("*.yaml")):
                shutil.copyfile(path, dest / path.name)


#: the methods' config folders hold only YAML (no __init__.py); listing them as namespace packages
#: ships their files as package data without setuptools' "absent from packages" warning.
CONFIG_PACKAGES = find_namespace_packages("methods", include=["vibench_methods.configs", "vibench_methods.configs.*"])

setup(
    packages=find_packages("benchmark") + find_packages("methods") + CONFIG_PACKAGES,
    package_dir={"vibench": "benchmark/vibench", "vibench_methods": "methods/vibench_methods"},
    package_data={"vibench_methods": ["configs/**/*.yaml"]},
    cmdclass={"build_py": BuildWithData},
)
