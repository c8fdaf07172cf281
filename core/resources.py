"""Files shipped inside the packages (migrations, catalogs, templates, static assets).

Read through `importlib.resources`, so the same code works from a checkout, an editable install
and an installed wheel. Packages are installed as plain directories (never zipped), which the
libraries that take a folder (aiogram's I18n, aiohttp's static route) rely on.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def package_dir(package: str, *parts: str) -> Path:
    """The folder `parts` inside `package` on disk; raises if the package is not a plain directory."""
    node = resources.files(package).joinpath(*parts)
    if not isinstance(node, Path):
        raise RuntimeError(
            f"{package} is not installed as a directory ({node!r}); install the wheel unzipped"
        )
    return node
