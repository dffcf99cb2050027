"""``phonefleet reference-model``: an OpenAI-compatible server answering as AutoGLM-Phone, by rules."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from orchestrator.cli.port_file import PORT_FILE_HELP
from orchestrator.cli.refusal import refuse
from orchestrator.settings import MODEL_FAMILIES

logger = logging.getLogger(__name__)


def _cmd_reference_model(args: argparse.Namespace) -> int:
    import uvicorn

    from orchestrator.cli.port_file import write_port_file
    from worker.reference_model import ReferenceModelConfig, ScriptError, create_app, load_script

    script = None
    if args.script is not None:
        try:
            script = load_script(Path(args.script))
        except ScriptError as exc:
            refuse("reference-model", f"{exc}")
            return 2
    config = ReferenceModelConfig(model_name=args.model_name, script=script, family=args.family, role=args.role)
    app = create_app(config)
    mode = f"script {args.script} ({len(script)} steps)" if script is not None else "rules (OCR)"
    logger.info(
        "reference model on http://%s:%d/v1; Ctrl-C stops", args.host, args.port,
        extra={"model": args.model_name, "mode": mode, "family": args.family, "role": args.role},
    )  # fmt: skip
    # uvicorn handles SIGINT/SIGTERM itself, finishing in-flight requests; it exits 1 if it cannot bind.
    config = uvicorn.Config(app, host=args.host, port=args.port, log_config=None, access_log=False)
    server = uvicorn.Server(config)
    sockets = None
    if args.port_file:  # bound before the file is written, so the port it names is already ours
        sockets = [config.bind_socket()]
        write_port_file(args.port_file, sockets[0].getsockname()[1])
    server.run(sockets=sockets)
    return 0 if server.started else 1


def register(sub: argparse._SubParsersAction) -> None:
    cmd = sub.add_parser(
        "reference-model", help="serve an OpenAI-compatible stand-in for AutoGLM-Phone (OCR + rules)"
    )
    cmd.add_argument(
        "--port", type=int, default=8001, help="port to listen on (default 8001; 0: any free one)"
    )
    cmd.add_argument("--port-file", default=None, help=PORT_FILE_HELP)
    cmd.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    cmd.add_argument(
        "--script",
        default=None,
        help="JSON list of replies or action calls to replay by step, instead of rules",
    )
    cmd.add_argument(
        "--model-name",
        default="autoglm-phone-9b",
        help="the model name clients must ask for (default autoglm-phone-9b)",
    )
    cmd.add_argument(
        "--family", choices=MODEL_FAMILIES, default="autoglm",
        help="the model family whose requests it reads and whose replies it writes (docs/models.md)",
    )  # fmt: skip
    cmd.add_argument(
        "--role", choices=("agent", "planner", "grounder"), default="agent",
        help="agent: the next action; planner: the next action, its targets in words; grounder: where a "
        "planner's target is (docs/models.md, 'Planner and grounder')",
    )  # fmt: skip
    cmd.set_defaults(func=_cmd_reference_model)
