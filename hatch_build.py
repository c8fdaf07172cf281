"""Build hook: what the wheel needs that git does not hold.

- The gettext catalogs are compiled (`locales/<lang>/LC_MESSAGES/messages.po` → `.mo`) with babel,
  so an installed bot finds them through `importlib.resources` with no `make` step. An editable
  (development) install compiles them in place, next to the `.po` files, where git ignores them.
- The Mini App's built assets (`webapp/static/dist/`, made by `scripts/frontend.sh` or the
  Dockerfile's Node stage) go into the wheel; a wheel built without them would serve a blank app,
  so the build stops and says how to make them.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from hatchling.builders.hooks.plugin.interface import BuildHookInterface

DOMAIN = "messages"


def compile_catalogs(locales: Path, out: Path) -> list[Path]:
    """Compile every `<lang>/LC_MESSAGES/messages.po` under `locales` into the same layout under `out`."""
    written = []
    for po_path in sorted(locales.glob(f"*/LC_MESSAGES/{DOMAIN}.po")):
        with po_path.open("rb") as source:
            catalog = read_po(source, locale=po_path.parent.parent.name)
        errors = [(message.id, error) for message, errs in catalog.check() for error in errs]
        if errors:
            raise RuntimeError(f"{po_path}: {len(errors)} broken translation(s), first: {errors[0]}")
        mo_path = out / po_path.relative_to(locales).with_suffix(".mo")
        mo_path.parent.mkdir(parents=True, exist_ok=True)
        with mo_path.open("wb") as target:
            write_mo(target, catalog)
        written.append(mo_path)
    if not written:
        raise RuntimeError(f"no {DOMAIN}.po catalogs under {locales}")
    return written


class CustomBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        root = Path(self.root)
        locales = root / "locales"
        if version == "editable":
            compile_catalogs(locales, locales)
            return
        self._tmp = Path(tempfile.mkdtemp(prefix="volspike-build-"))
        for mo_path in compile_catalogs(locales, self._tmp):
            build_data["force_include"][str(mo_path)] = f"locales/{mo_path.relative_to(self._tmp)}"
        if (root / "webapp" / "frontend" / "package.json").is_file():
            dist = root / "webapp" / "static" / "dist"
            if not any(dist.glob("*")):
                raise RuntimeError(
                    "webapp/static/dist/ is empty: build the Mini App's assets first "
                    "(`bash scripts/frontend.sh`, i.e. npm ci && npm run build in webapp/frontend)"
                )
            build_data["force_include"][str(dist)] = "webapp/static/dist"

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        tmp = getattr(self, "_tmp", None)
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
