"""Package layout: the engine in ``benchmark/`` installs as ``vibench``, the method
implementations in ``methods/`` as ``vibench.methods`` (metadata lives in pyproject.toml)."""
from setuptools import find_packages, setup


def _mapped(folder: str, name: str) -> list[str]:
    found = find_packages(include=[folder, f"{folder}.*"])
    return [name + pkg[len(folder):] for pkg in found]


setup(
    packages=_mapped("benchmark", "vibench") + _mapped("methods", "vibench.methods"),
    package_dir={"vibench": "benchmark", "vibench.methods": "methods"},
    package_data={"vibench.methods": ["**/*.yaml"]},
)
