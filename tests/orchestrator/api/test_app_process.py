"""An API process exempts its startup heap from garbage collection; an app among others does not.

Full collections walking the imported modules' objects paused ``phonefleet api`` for 60–145 ms at
a time under load (docs/control-plane.md, "Benchmarks"). Each case runs the app's lifespan in a
fresh interpreter, since freezing is process-wide.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]

_PROGRAM = """
import asyncio, gc, sys
from orchestrator.api.app import create_app
from orchestrator.settings import Settings

async def main(freeze):
    app = create_app(Settings(data_dir=sys.argv[1], database_url=sys.argv[2]), freeze_heap=freeze)
    async with app.router.lifespan_context(app):
        print(gc.get_freeze_count())

asyncio.run(main(sys.argv[3] == "freeze"))
"""


@pytest.mark.parametrize("mode", ["freeze", "leave"])
def test_the_api_process_freezes_its_startup_heap(
    tmp_path: Path, migrated_sqlite_url: str, mode: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _PROGRAM, str(tmp_path), migrated_sqlite_url, mode],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    frozen = int(done.stdout.split()[-1])
    if mode == "freeze":
        assert frozen > 50_000  # the modules, the app and its services
    else:
        assert frozen == 0
