"""Build hook: what the wheel and the sdist need that git does not hold.

- The gettext catalogs are compiled (`locales/<lang>/LC_MESSAGES/messages.po` → `.mo`) with babel,
  so an installed bot finds them through `importlib.resources` with no `make` step. An editable
  (development) install compiles them in place, next to the `.po` files, where git ignores them.
- The Mini App's built assets (`webapp/static/dist/`) go into the wheel and the sdist. When they are
  missing (a clean clone), the hook builds them as `scripts/frontend.sh` does: `npm ci` and the
  esbuild bundle in `webapp/frontend/`. Without npm it stops and says what to install. The sdist
  carries the built assets, so a wheel built from it needs no npm; git never tracks them.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from hatchling.builders.hooks.plugin.interface import BuildHookInterface

DOMAIN = "messages"
DIST = Path("webapp", "static", "dist")
FRONTEND = Path("webapp", "frontend")
# build.mjs writes the manifest after the bundle: present means the bundle is complete
BUNDLE_DONE = "manifest.json"


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


def mini_app_assets(root: Path) -> Path:
    """`webapp/static/dist/`, bundled first with npm when it is not there yet."""
    dist = root / DIST
    if (dist / BUNDLE_DONE).is_file():
        return dist
    frontend = root / FRONTEND
    if not (frontend / "package.json").is_file():
        raise RuntimeError(f"{DIST}/ is missing and there is no {FRONTEND}/package.json to build it from")
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(
            f"{DIST}/ (the Mini App's bundle) is missing and npm is not installed to build it: "
            "install Node.js 18+ with npm (Debian: apt-get install -y nodejs npm) and build again, "
            "or install from the sdist, which carries the bundle"
        )
    for args in (
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        [npm, "run", "--silent", "build"],
    ):
        result = subprocess.run(args, cwd=frontend, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(
                f"`{' '.join(['npm', *args[1:]])}` in {FRONTEND}/ failed ({result.returncode}):\n"
                + (result.stderr or result.stdout)[-2000:]
            )
    if not (dist / BUNDLE_DONE).is_file():
        raise RuntimeError(f"`npm run build` in {FRONTEND}/ wrote no {DIST}/{BUNDLE_DONE}")
    return dist


class CustomBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        root = Path(self.root)
        locales = root / "locales"
        if self.target_name == "wheel" and version == "editable":
            compile_catalogs(locales, locales)
            return
        if not (root / DIST / BUNDLE_DONE).is_file():
            self.app.display_info(f"building the Mini App's bundle in {FRONTEND}/ (npm ci + esbuild)")
        build_data["force_include"][str(mini_app_assets(root))] = str(DIST)
        if self.target_name == "wheel":
            self._tmp = Path(tempfile.mkdtemp(prefix="volspike-build-"))
            for mo_path in compile_catalogs(locales, self._tmp):
                build_data["force_include"][str(mo_path)] = f"locales/{mo_path.relative_to(self._tmp)}"

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        tmp = getattr(self, "_tmp", None)
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
