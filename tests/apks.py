"""Real APKs for the tests, built by Android's own packaging tool (Debian's ``aapt``, which .ci/run
installs): a manifest naming the package, packed into a zip with a binary AndroidManifest.xml, as
any APK carries. No code or resources: the virtual phone reads only the manifest."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

__all__ = ["build_apk"]

_MANIFEST = """<?xml version="1.0" encoding="utf-8"?>
<manifest xmlns:android="http://schemas.android.com/apk/res/android" package="{package}">
  <application/>
</manifest>
"""


def build_apk(folder: Path, package: str) -> bytes:
    """The bytes of an APK for ``package``, built in ``folder``."""
    aapt = shutil.which("aapt")
    assert aapt, "aapt is not installed (apt-get install aapt; .ci/run installs it)"
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "AndroidManifest.xml"
    manifest.write_text(_MANIFEST.format(package=package), encoding="utf-8")
    apk = folder / f"{package}.apk"
    subprocess.run([aapt, "package", "-f", "-M", str(manifest), "-F", str(apk)], check=True, capture_output=True)
    return apk.read_bytes()
