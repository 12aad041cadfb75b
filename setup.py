"""Which packages to install: each top-level folder installs under the project's name.

The folders keep short names; the installed names (colorizer_core, colorizer_service,
colorizer_trainer) cannot collide with other packages called `service` or `trainer`. An image that
copies only some folders (the service's leaves trainer/ out) installs only those, and only their
console scripts: a trainer-only install has no `colorize-serve` that could not start.
"""

from pathlib import Path

from setuptools import find_namespace_packages, setup

INSTALLED_NAMES = {"core": "colorizer_core", "service": "colorizer_service", "trainer": "colorizer_trainer"}
CONSOLE_SCRIPTS = {
    "trainer": ["colorize-train = colorizer_trainer.cli:main"],
    "service": ["colorize-serve = colorizer_service.cli:serve", "colorize = colorizer_service.cli:colorize"],
}


def subpackages(folder: str) -> list[str]:
    """Every folder below `folder` that Python can import, data folders (static/, weights/) included:
    setuptools wants the folders its package data lies in listed as packages."""
    found = find_namespace_packages(folder, exclude=["__pycache__", "*.__pycache__"])
    return [name for name in found if all(part.isidentifier() for part in name.split("."))]


root = Path(__file__).parent
present = {folder: name for folder, name in INSTALLED_NAMES.items() if (root / folder / "__init__.py").is_file()}
setup(
    package_dir={name: folder for folder, name in present.items()},
    packages=[
        f"{name}{'.' + sub if sub else ''}"
        for folder, name in present.items()
        for sub in ["", *subpackages(folder)]
    ],
    entry_points={"console_scripts": [script for folder in present for script in CONSOLE_SCRIPTS.get(folder, [])]},
)
