"""The wheel built from the checkout carries what the package reads at run time."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import flask_sdkauth

ROOT = Path(__file__).resolve().parent.parent


def test_the_wheel_carries_templates_catalogues_assets_and_the_licence(tmp_path):
    # Built from a copy, so that no build/ folder of the checkout's leaks in.
    source = tmp_path / "source"
    shutil.copytree(
        ROOT, source,
        ignore=shutil.ignore_patterns(".*", "build", "dist", "docs", "*.egg-info", "__pycache__"),
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--quiet", "-w", str(tmp_path), str(source)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("flask_sdkauth-*.whl")
    # The version comes from one place: flask_sdkauth.__version__.
    assert wheel.name.startswith(f"flask_sdkauth-{flask_sdkauth.__version__}-")
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in (
        "flask_sdkauth/py.typed",
        "flask_sdkauth/templates/sdkauth/confirm.html",
        "flask_sdkauth/translations/ru/LC_MESSAGES/sdkauth.po",
        "flask_sdkauth/static/sdkauth-widget.js",
        "flask_sdkauth/static/sdkauth-widget.css",
        "flask_sdkauth/static/sdkauth-page.css",
        f"flask_sdkauth-{flask_sdkauth.__version__}.dist-info/licenses/LICENSE",
    ):
        assert needed in names, needed
    assert not any(name.startswith(("tests/", "example_app/", "benchmarks/")) for name in names)
