"""A Python user's install from a clean clone: `uv build` of the wheel and of the sdist, each installed
into a fresh virtualenv outside the tree.

The clone is `git clone` of this checkout's HEAD, so it holds exactly what git tracks: no Mini App
bundle, no compiled catalogs. The build hook bundles the Mini App with npm (`npm ci` + esbuild) and
compiles the catalogs; the sdist carries the bundle, so it installs with no npm on PATH. Without npm
and without a bundle the wheel build stops with one clear line.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from core.i18n import SUPPORTED_LOCALES
from tests.test_wheel import _clean_env, _uv

ROOT = Path(__file__).resolve().parent.parent
BUNDLE = ("webapp/static/dist/chart.js", "webapp/static/dist/manifest.json", "webapp/static/dist/app.css")

pytestmark = pytest.mark.timeout(300)


def _clone(tmp: Path) -> Path:
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    src = tmp / "src"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(src)], check=True)
    assert not (src / "webapp" / "static" / "dist").exists()
    assert not list(src.glob("locales/*/LC_MESSAGES/*.mo"))
    return src


def _path_without_npm(tmp: Path) -> str:
    """A PATH holding uv alone: the build and the install cannot reach npm or node."""
    bin_dir = tmp / "bin-no-npm"
    bin_dir.mkdir()
    (bin_dir / "uv").symlink_to(_uv())
    return str(bin_dir)


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=240, check=False)


def _install(artifact: Path, venv: Path, env: dict[str, str]) -> None:
    """A fresh virtualenv with the locked runtime requirements, then `artifact` (wheel or sdist)."""
    uv = _uv()
    subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], check=True, env=env)
    python = str(venv / "bin" / "python")
    lock = ROOT / "requirements" / "main.lock"
    subprocess.run([uv, "pip", "sync", "--quiet", "--python", python, str(lock)], check=True, env=env)
    installed = _run([uv, "pip", "install", "--python", python, "--no-deps", str(artifact)], env)
    assert installed.returncode == 0, installed.stderr[-3000:]


def _check_installed(venv: Path) -> None:
    """The installed package, read from outside the tree, has the bundle and the five catalogs and runs."""
    probe = (
        "import importlib.resources as r, webapp, locales; "
        "print(webapp.__file__); "
        f"print(all(r.files('webapp').joinpath(p.removeprefix('webapp/')).is_file() for p in {BUNDLE!r})); "
        "print(all(r.files('locales').joinpath(lang, 'LC_MESSAGES', 'messages.mo').is_file() "
        f"for lang in {SUPPORTED_LOCALES!r}))"
    )
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c", probe],
        cwd=venv,
        env=_clean_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out[0].startswith(str(venv)) and str(ROOT) not in out[0], out
    assert out[1:] == ["True", "True"], out
    version = _run([str(venv / "bin" / "volspike"), "--version"], _clean_env())
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == "volspike 0.1.0"


def test_wheel_from_a_clean_clone_without_npm_says_what_to_install(tmp_path: Path) -> None:
    src = _clone(tmp_path)
    env = _clean_env(PATH=_path_without_npm(tmp_path))
    built = _run(
        [_uv(), "build", "--python", sys.executable, "--wheel", "-o", str(tmp_path / "out"), str(src)], env
    )
    assert built.returncode != 0
    assert "webapp/static/dist/ (the Mini App's bundle) is missing and npm is not installed" in built.stderr
    assert "apt-get install -y nodejs npm" in built.stderr
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.whl"))


def test_wheel_from_a_clean_clone_bundles_the_mini_app_and_installs_outside_the_tree(tmp_path: Path) -> None:
    src = _clone(tmp_path)
    env = _clean_env()
    built = _run([_uv(), "build", "--wheel", "-o", str(tmp_path / "out"), str(src)], env)
    assert built.returncode == 0, built.stderr[-3000:]
    assert "building the Mini App's bundle" in built.stderr
    (wheel,) = (tmp_path / "out").glob("volspike-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert set(BUNDLE) <= set(names)
    assert {f"locales/{locale}/LC_MESSAGES/messages.mo" for locale in SUPPORTED_LOCALES} <= set(names)
    assert len(names) == len(set(names)), "a file is in the wheel twice"
    assert not [n for n in names if "node_modules" in n or n.startswith("webapp/frontend/")]
    status = subprocess.run(
        ["git", "-C", str(src), "status", "--porcelain", "--ignored=no"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert status.stdout == "", "the build left files git would track:\n" + status.stdout
    _install(wheel, tmp_path / "venv", env)
    _check_installed(tmp_path / "venv")


def test_sdist_from_a_clean_clone_carries_the_bundle_and_installs_without_npm(tmp_path: Path) -> None:
    src = _clone(tmp_path)
    built = _run([_uv(), "build", "--sdist", "-o", str(tmp_path / "out"), str(src)], _clean_env())
    assert built.returncode == 0, built.stderr[-3000:]
    (sdist,) = (tmp_path / "out").glob("volspike-*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {n.split("/", 1)[1] for n in archive.getnames() if "/" in n}
    assert set(BUNDLE) <= names
    assert "webapp/frontend/package-lock.json" in names and "hatch_build.py" in names
    assert not [n for n in names if "node_modules" in n]
    no_npm = _clean_env(PATH=_path_without_npm(tmp_path))
    _install(sdist, tmp_path / "venv", no_npm)
    _check_installed(tmp_path / "venv")
