#!/usr/bin/env python3
"""Renders universe/icons/switchyard.svg to the three PNG icons Universe shows (48, 128 and
256 pixels square) with headless Chromium and writes them into the package's resource.json as
data: URLs, so that the package shows its icons with no network (see docs/operations.md,
"Installing on DC/OS"). Run it after changing the SVG; the test suite checks the result.

    scripts/universe-icons.py [universe/switchyard/0/resource.json]
"""

import base64
import json
import pathlib
import shutil
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
SVG = ROOT / "universe" / "icons" / "switchyard.svg"
SIZES = {"icon-small": 48, "icon-medium": 128, "icon-large": 256}


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    sys.exit("needs Chromium (scripts/install-test-deps.sh installs it)")


def render(size, out):
    subprocess.run(
        [
            chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--default-background-color=00000000", f"--window-size={size},{size}",
            f"--screenshot={out}", SVG.as_uri(),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return out.read_bytes()


def main():
    resource_path = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else (
        ROOT / "universe" / "switchyard" / "0" / "resource.json")
    resource = json.loads(resource_path.read_text(encoding="ascii"))
    images = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, size in SIZES.items():
            png = render(size, pathlib.Path(tmp) / f"{name}.png")
            images[name] = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    # images first, as Universe packages write them.
    resource = {"images": images, **{k: v for k, v in resource.items() if k != "images"}}
    resource_path.write_text(json.dumps(resource, indent=2) + "\n", encoding="ascii")


if __name__ == "__main__":
    main()
