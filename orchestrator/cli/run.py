"""``phonefleet run "TASK" --device SERIAL``: one task from the terminal, step by step.

Prints a line per step (step, timings, action, thinking) and saves the trajectory (JSONL +
screenshots + result.json). At a terminal, sensitive actions ask for y/N and takeovers wait for
Enter; without one, sensitive actions are denied (or approved with ``--yes``) and a takeover ends
the run as ``needs_user``. The adb server answering on ``--adb-port`` is used; with none, one is
started as this command's child and stopped when it ends.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import signal
import sys
from pathlib import Path

from orchestrator.cli.follow import describe_action
from orchestrator.settings import MODEL_FAMILIES as FAMILY_NAMES
from worker.agent.results import StepRecord
from worker.agent.steering import AgentHooks, AgentState, AgentSteering


class TerminalHooks(AgentHooks):
    def __init__(self, writer, interactive: bool, approve_all: bool) -> None:
        self.writer = writer
        self.interactive = interactive
        self.approve_all = approve_all

    async def _ask(self, prompt: str) -> str:
        return (await asyncio.to_thread(input, prompt)).strip()

    async def on_step(self, step: StepRecord) -> None:
        t = step.timings
        thinking = " ".join(step.thinking.split())[:100]
        print(
            f"step {step.index:>2}  capture {t.capture_s * 1000:5.0f} ms  model {t.model_s * 1000:6.0f} ms  "
            f"act {t.act_s * 1000:5.0f} ms  settle {t.settle_s * 1000:5.0f} ms  [{step.current_app}]  "
            f"{step.action_text}" + (f"  ({step.result})" if step.result != "ok" else ""),
            flush=True,
        )
        if thinking:
            print(f"         {thinking}", flush=True)
        await self.writer.write_step(step)

    async def on_state(self, state: AgentState, detail: str = "") -> None:
        if state != AgentState.RUNNING:
            print(f"-- {state}: {detail}", flush=True)

    async def request_confirmation(self, action, message: str, element_label: str | None = None) -> bool:
        if self.approve_all:
            return True
        if not self.interactive:
            return False
        what = describe_action(action.model_dump(mode="json"), element_label)
        return (await self._ask(f"Allow '{message}' ({what})? [y/N] ")).lower() in ("y", "yes")

    async def request_takeover(self, message: str) -> str | None:
        if not self.interactive:
            return None
        return await self._ask(f"{message}\nDo it on the phone, then press Enter (optionally type a note): ")

    async def ask_user(self, question: str) -> str | None:
        if not self.interactive:
            return None
        return await self._ask(f"{question}\n> ")


async def _run(args: argparse.Namespace) -> int:
    from device_pool.driver import AdbServerClient
    from device_pool.pool.adb_supervisor import AdbServerSupervisor
    from worker.agent.loop import AgentConfig
    from worker.agent.model_client import ModelClientConfig, ModelEndpoint
    from worker.agent.phone_agent import phone_agent
    from worker.agent.trajectory_files import TrajectoryWriter

    out = Path(args.out or f"runs/{dt.datetime.now():%Y%m%d-%H%M%S}")
    writer = TrajectoryWriter(out, instruction=args.task)
    family, lang = args.family, args.lang
    grounder, grounder_family, planner_vision = None, None, True
    prompt = Path(args.prompt_file).read_text(encoding="utf-8") if args.prompt_file else None
    if args.endpoint is not None:  # a named endpoint of the settings (model.endpoints), as a task's model
        from orchestrator.errors import UnknownModelEndpoint
        from orchestrator.model_endpoints import endpoint_for
        from orchestrator.settings import load_settings
        from worker.run.endpoints import PromptFileError, endpoint_run

        settings = load_settings()
        try:
            run = endpoint_run(endpoint_for(args.endpoint, settings.model), settings.model,
                               image_max_pixels=args.image_pixels)  # fmt: skip
        except (UnknownModelEndpoint, PromptFileError) as exc:
            print(f"phonefleet run: {exc}", file=sys.stderr)
            return 2
        model, grounder, grounder_family = run.client, run.grounder, run.grounder_family
        planner_vision = run.planner_vision
        family, lang = args.family or run.family, run.lang if args.lang is None else args.lang
        prompt = prompt if prompt is not None else run.prompt
    else:
        model = ModelClientConfig(
            endpoints=[
                ModelEndpoint(base_url=url, model=args.model, api_key=args.api_key)
                for url in (args.model_url or ["http://127.0.0.1:8001/v1"])
            ],
            image_max_pixels=args.image_pixels,
        )
    hooks = TerminalHooks(writer, sys.stdin.isatty(), args.yes)
    steering = AgentSteering()
    # The adb server answering on the port is used (the pool's, a developer's); with none, one is
    # started as this command's own child and stopped when it ends: nothing it started outlives it.
    adb = AdbServerSupervisor(AdbServerClient(args.adb_host, args.adb_port))
    try:
        await adb.start()
        async with phone_agent(
            args.device, model, adb_host=args.adb_host, adb_port=args.adb_port, grounder=grounder
        ) as agent:
            # The first Ctrl-C cancels the run cleanly (the model call in flight is abandoned).
            asyncio.get_running_loop().add_signal_handler(signal.SIGINT, steering.cancel, "interrupted")
            result = await agent.run(
                args.task,
                config=AgentConfig(
                    max_steps=args.max_steps,
                    budget_s=args.budget,
                    lang=lang or "en",
                    family=family or "autoglm",
                    prompt=prompt,
                    grounder_family=grounder_family,
                    planner_vision=planner_vision,
                    image_max_pixels=args.image_pixels,
                ),
                hooks=hooks,
                steering=steering,
            )
    finally:
        await adb.close()
    await writer.write_result(args.task, result, {"device": args.device, "model": args.model})
    totals = result.totals()
    print(
        f"{result.status}{f' ({result.reason})' if result.reason else ''}: {result.message}\n"
        f"{result.step_count} steps in {result.elapsed_s:.1f} s (model {totals['model_s']:.1f} s); "
        f"trajectory: {out}",
        flush=True,
    )
    return 0 if result.status == "succeeded" else 1


def _cmd_run(args: argparse.Namespace) -> int:
    return asyncio.run(_run(args))


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run one task on one phone from the terminal")
    p.add_argument("task", help='what to do, in plain language ("turn on Wi-Fi")')
    p.add_argument("--device", required=True, help="ADB serial, e.g. 127.0.0.1:6520")
    p.add_argument(
        "--model-url", action="append", default=None,
        help="OpenAI-compatible base URL (repeat for failover; default http://127.0.0.1:8001/v1)",
    )  # fmt: skip
    p.add_argument("--model", default="autoglm-phone-9b", help="model name the server knows")
    p.add_argument("--api-key", default=None)
    p.add_argument(
        "--lang",
        choices=("en", "zh"),
        default=None,
        help="prompt language (zh for AutoGLM-Phone-9B; default en)",
    )
    p.add_argument(
        "--family", choices=FAMILY_NAMES, default=None,
        help="the model's reply grammar (docs/models.md; default autoglm, or the endpoint's)",
    )  # fmt: skip
    p.add_argument(
        "--endpoint", default=None,
        help="a model endpoint of the settings by name (model.endpoints): its URL, model, family and prompt",
    )  # fmt: skip
    p.add_argument(
        "--prompt-file", default=None, help="a system prompt of your own (placeholders: docs/models.md)"
    )
    p.add_argument("--max-steps", type=int, default=30)
    p.add_argument("--budget", type=float, default=600.0, help="wall-clock seconds for the whole run")
    p.add_argument("--image-pixels", type=int, default=1_000_000, help="screenshot pixel budget per request")
    p.add_argument("--adb-host", default="127.0.0.1")
    p.add_argument("--adb-port", type=int, default=5037)
    p.add_argument("--out", default=None, help="trajectory folder (default runs/<timestamp>)")
    p.add_argument("--yes", action="store_true", help="approve sensitive actions without asking")
    p.set_defaults(func=_cmd_run)
