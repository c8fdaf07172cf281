"""The figures' formats: Python's (the bot, the API) and the browser's (webapp/frontend/src/lib/
format.js, bundled by the project's esbuild and run by node) read one spec and write the same
string for every value, exact rounding ties included (toFixed rounds them away from zero,
Python to even)."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from core.number_format import (
    format_change,
    format_funding,
    format_price,
    format_ratio,
    format_usd,
    tick_decimals,
)

ROOT = Path(__file__).resolve().parent.parent
FRONTEND = ROOT / "webapp" / "frontend"
ESBUILD = FRONTEND / "node_modules" / ".bin" / "esbuild"

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or not ESBUILD.exists(), reason="needs node and the frontend's npm ci"
)

RUN = (
    "const f = require(process.argv[1]);"
    "const values = JSON.parse(require('fs').readFileSync(0));"
    "const all = (x) => [f.usd(x), f.price(x), f.ratio(x), f.funding(x), f.change(x)];"
    "console.log(JSON.stringify(values.map(all)));"
)


def browser_formats(values: list[float], tmp_path: Path) -> list[list[str]]:
    bundle = tmp_path / "format.cjs"
    subprocess.run(
        [
            str(ESBUILD),
            "src/lib/format.js",
            "--bundle",
            "--format=cjs",
            f"--outfile={bundle}",
            "--log-level=warning",
        ],
        cwd=FRONTEND,
        check=True,
        timeout=120,
    )
    done = subprocess.run(
        ["node", "-e", RUN, str(bundle)], input=json.dumps(values), capture_output=True, text=True, check=True
    )
    written: list[list[str]] = json.loads(done.stdout)
    return written


def test_spot_values_read_as_the_alert_text_writes_them() -> None:
    assert (
        format_usd(5e9) == "$5.00B" and format_usd(950_000) == "$950.00K" and format_usd(12.344) == "$12.34"
    )
    assert format_price(97123.4) == "$97,123.40" and format_price(1.5) == "$1.5"
    assert format_price(0.00001234) == "$0.00001234" and format_price(0) == "$0"
    assert (
        format_ratio(3.3333) == "3.33×"
        and format_funding(0.0001) == "+0.0100%"
        and format_funding(None) == "n/a"
    )
    assert format_change(-0.314) == "-0.31%" and format_change(2.5) == "+2.50%"


def test_the_browser_writes_every_figure_as_python_does(tmp_path: Path) -> None:
    rng = random.Random(10)
    ties = [1.625, 0.125, 0.375, 2.5, 1234.125, 97123.125, 999.995, 1.005, -0.125, -1.625]
    values = [
        *ties,
        *(rng.uniform(0, 2e5) for _ in range(1500)),
        *(rng.uniform(0, 1) for _ in range(1000)),
        *(round(rng.uniform(0, 50), 4) for _ in range(1500)),  # ratios as stored (4 places)
        *(rng.uniform(-1e-3, 1e-3) for _ in range(500)),  # funding rates
        *(rng.randint(0, 8000) / 8 for _ in range(1000)),  # exact binary fractions: many ties
        *(rng.uniform(1e3, 5e12) for _ in range(500)),  # quote volumes
    ]
    written = browser_formats(values, tmp_path)
    for value, (usd, price, ratio, funding, change) in zip(values, written, strict=True):
        assert usd == format_usd(value), value
        if value >= 0:
            assert price == format_price(value), value
        assert ratio == format_ratio(value), value
        assert funding == format_funding(value), value
        assert change == format_change(value), value


@pytest.mark.parametrize(
    ("tick", "decimals"),
    [
        ("0.10", 1),
        ("0.00001000", 5),
        ("1", 0),
        ("10", 0),
        ("0.0001", 4),
        ("0", None),
        ("-0.1", None),
        ("nan", None),
        ("x", None),
        (0.1, None),
        (None, None),
    ],
)
def test_price_decimals_are_those_of_the_tick_size(tick: object, decimals: int | None) -> None:
    assert tick_decimals(tick) == decimals
