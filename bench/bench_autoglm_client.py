"""The reference model through Open-AutoGLM's own client: its ``main.py``, unmodified, from your checkout.

That client differs from ours where it matters to a model: it names the foreground app by the first
name in its own table (``AndroidSystemSettings`` for ``com.android.settings``, "System Home" for any
package it does not know) and drops a ``Launch`` of an app name it lacks without a word. Each
instruction runs as ``python main.py --device-id SERIAL --max-steps 15 --lang en|cn "…"`` against its
own factory-fresh virtual phone (``phonefleet sim``), through a private adb server (the client's plain
``adb`` calls find it by ``ANDROID_ADB_SERVER_PORT``), with ``phonefleet reference-model`` as the
model, and is checked from the phone's state exactly as ``bench_phrasings.py`` checks it.

The client is not part of this project and is not installed by it: give the path of a checkout of
https://github.com/zai-org/Open-AutoGLM and a python that has its requirements (Pillow, openai):

    git clone https://github.com/zai-org/Open-AutoGLM /tmp/oag
    python3 -m venv /tmp/oag-venv && /tmp/oag-venv/bin/pip install -r /tmp/oag/requirements.txt
    .venv/bin/python bench/bench_autoglm_client.py /tmp/oag --python /tmp/oag-venv/bin/python [--jobs 2]

Its instructions: the ones of ``bench_phrasings.py`` named in ``INSTRUCTIONS`` (or ``--only REGEX``
over all of them). A run succeeds when the client ends with a finish (not "Max steps reached", not an
error) and the phone is in the wanted state. The client's Take_over waits for Enter on its stdin; here
stdin is closed, so a Take_over ends the run as a failure. Exits 0 whatever the rate (it is a bench).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_phrasings import CASES, AdbServer, Case, Client, Run, report, run_all, start_adb_server

from device_pool.sim.state import ADB_IME

# The tasks (Wi-Fi in English and Chinese from a phone with Wi-Fi off, an SMS to a number, a
# note, a contact) and a few more of each kind the client's table lacks (Messages, Notes, Shop).
INSTRUCTIONS = [
    "Turn on Wi-Fi",
    "Open Settings and switch Wi-Fi on",
    "打开WLAN",
    "打开无线网络",
    "Turn on Bluetooth and turn off Wi-Fi",
    "Send a message to 5550123 saying hello",
    "给5550129发短信说你好",
    "Write a note titled Shopping with the text buy milk",
    "写一条笔记：明天开会",
    "Add a contact named Ada Lovelace with phone number 5550100",
    "添加联系人张三，电话13800138000",
    "Add Wireless Earbuds to the cart",
    "Launch the Notes app",
]

_CJK = re.compile(r"[\u4e00-\u9fff]")
_RESULT = re.compile(r"^Result: (.*)$", re.MULTILINE)


def autoglm_client(checkout: Path, python: str) -> Client:
    def run(case: Case, serial: str, adb: AdbServer, model_url: str, out: Path, max_steps: int) -> Run:
        lang = "cn" if _CJK.search(case.instruction) else "en"
        cmd = [
            python, "main.py", "--base-url", model_url, "--model", "autoglm-phone-9b",
            "--device-id", serial, "--max-steps", str(max_steps), "--lang", lang, case.instruction,
        ]  # fmt: skip
        # Its own adb server, with only this phone: the client's start-up check runs `adb shell` without
        # a serial, which fails when the server lists more than one device.
        own = start_adb_server(out / "adb-home", adb.binary)
        try:
            own.connect(serial)
            # As its README asks of a user: ADB Keyboard enabled (the virtual phone has it installed).
            own.run("-s", serial, "shell", f"ime enable {ADB_IME}", check=True)
            env = dict(own.env(), PYTHONIOENCODING="utf-8", PYTHONUNBUFFERED="1")
            env.pop("PYTHONPATH", None)  # its own imports only
            done = subprocess.run(
                cmd,
                cwd=checkout,
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=400,
            )
        finally:
            own.stop()
        text = done.stdout + done.stderr
        out.mkdir(parents=True, exist_ok=True)
        (out / "client.log").write_text(text, encoding="utf-8")
        steps = text.count("🎯")  # its verbose output marks each action so
        result = _RESULT.search(text)
        if done.returncode != 0 or result is None:
            last = text.strip().splitlines()[-1:] or [""]
            return Run(f"exit {done.returncode}", steps, last[0])
        message = result.group(1)
        return Run("max_steps" if message == "Max steps reached" else "succeeded", steps, message)

    return run


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("checkout", type=Path, help="a checkout of zai-org/Open-AutoGLM (its main.py)")
    parser.add_argument("--python", default=sys.executable, help="a python with its requirements")
    parser.add_argument("--jobs", type=int, default=2, help="instructions run at once (default 2)")
    parser.add_argument(
        "--only", default=None, help="run the phrasing set's instructions matching this regex"
    )
    parser.add_argument("--max-steps", type=int, default=15)
    parser.add_argument("--batch", type=int, default=12, help="phones per `phonefleet sim` (default 12)")
    parser.add_argument("--json", default=None, help="write every outcome here")
    parser.add_argument("--keep-logs", type=Path, default=None, help="copy each run's client log here")
    args = parser.parse_args()
    if not (args.checkout / "main.py").is_file() or not (args.checkout / "phone_agent").is_dir():
        parser.error(f"{args.checkout} is not a checkout of Open-AutoGLM (no main.py and phone_agent/)")
    if args.only is None:
        by_text = {c.instruction: c for c in CASES}
        cases = [by_text[i] for i in INSTRUCTIONS]
    else:
        cases = [c for c in CASES if re.search(args.only, c.instruction)]
    client = autoglm_client(args.checkout.resolve(), args.python)
    if args.keep_logs is not None:
        args.keep_logs.mkdir(parents=True, exist_ok=True)
        inner = client

        def client(case: Case, serial: str, adb: AdbServer, model_url: str, out: Path, max_steps: int) -> Run:
            run = inner(case, serial, adb, model_url, out, max_steps)
            name = re.sub(r"\W+", "_", case.instruction)[:60]
            (args.keep_logs / f"{name}.log").write_text((out / "client.log").read_text(encoding="utf-8"))
            return run

    os.environ.pop("PHONE_AGENT_DEVICE_ID", None)  # the client reads it as a default; --device-id wins anyway
    report(run_all(cases, client, args.jobs, args.batch, args.max_steps), args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
