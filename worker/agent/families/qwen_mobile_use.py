"""Qwen ``mobile_use`` (``qwen-mobile-use``, Qwen2.5-VL; ``qwen3-mobile-use``, Qwen3-VL): a function-call
tool, JSON actions in pixels of the resized image (Qwen2.5-VL) or on a 0..999 scale (Qwen3-VL).

The shape follows the Qwen2.5-VL mobile-agent cookbook (QwenLM/Qwen2.5-VL; GUI-Owl uses the same
tool): the tool's JSON schema travels in the system text between ``<tools>`` tags (as Qwen's Nous-style
function-call prompt puts it, not in the request's ``tools=`` field); each request is one user turn
holding the screenshot and the task with the steps done so far as text; the model answers
``<tool_call>{"name": "mobile_use", "arguments": {...}}</tool_call>``. Points are pixels of the
image as sent, which the client smart-resizes itself so the resolution the schema announces is the
one the model sees. docs/models.md.
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

from worker.agent import actions as a
from worker.agent.conversation import Conversation
from worker.agent.errors import ActionParseError, ActionRejected, UnknownAction
from worker.agent.families.base import Family, action_class, generic_actions, point_fields, snake
from worker.agent.families.coords import Convention, ImageSize, from_grid, to_grid
from worker.agent.grammar import ActionModel, parse_duration
from worker.agent.parser import ParsedReply

TOOL = "mobile_use"
_PROMPT = """You are a helpful assistant.

# Tools

You may call the function below to act on the user's phone. Its signature:
{actions}

To call it, reply with a short thought, then the call as a JSON object with "name" and "arguments" inside <tool_call></tool_call> tags:
<tool_call>
{"name": "mobile_use", "arguments": {"action": "click", "coordinate": [x, y]}}
</tool_call>
Make one call per reply. Today's date: {date}."""
_NATIVE_ACTIONS = {
    "click": "Tap the point coordinate.",
    "long_press": "Press and hold the point coordinate for time seconds.",
    "swipe": "Swipe from coordinate to coordinate2.",
    "type": "Type text into the focused field (tap it first); it is cleared before.",
    "system_button": "Press a system button: Back or Home.",
    "open": "Open the app named text.",
    "wait": "Wait time seconds.",
    "answer": "End the task with text as the answer.",
    "terminate": "End the task; status says whether it succeeded.",
}
_NATIVE = {"Tap", "Long Press", "Swipe", "Type", "Back", "Home", "Launch", "Wait", a.FINISH}
_PROPERTIES: dict[str, dict[str, Any]] = {
    "coordinate": {"type": "array", "description": "A point [x, y] in pixels of the screenshot."},
    "coordinate2": {"type": "array", "description": "The end point [x, y] of a swipe."},
    "text": {"type": "string", "description": "The text to type, the app to open, or the answer."},
    "time": {"type": "number", "description": "Seconds to press or to wait."},
    "button": {
        "type": "string",
        "enum": ["Back", "Home", "Menu", "Enter"],
        "description": "The system button.",
    },
    "status": {"type": "string", "enum": ["success", "failure"], "description": "How the task ended."},
}
_TOOL_CALL = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|\Z)", re.DOTALL)
_THINKING = re.compile(r"</?(?:thinking|think|conclusion)>|^\s*(?:Thought|Action)\s*[:：]\s*", re.MULTILINE)
_FEEDBACK = (
    'Your reply held no function call I could run. Reply with one <tool_call>{"name": "mobile_use", '
    '"arguments": {"action": …}}</tool_call>.'
)
_POINT_KEYS = ("coordinate", "coordinate2")


def _generic_args(cls: type[ActionModel]) -> list[str]:
    return [key for key in cls.model_fields if key != "name" and key not in point_fields(cls)]


def tool_schema(size: ImageSize) -> dict[str, Any]:
    """The ``mobile_use`` function as the model is shown it, the screen's size (as sent) in it."""
    generic = generic_actions(_NATIVE)
    described = [f"* `{name}`: {what}" for name, what in _NATIVE_ACTIONS.items()]
    properties = {k: dict(v) for k, v in _PROPERTIES.items()}
    for cls in generic:
        described.append(f"* `{snake(cls.model_fields['name'].default)}`: {cls.purpose.en}")
        for key in _generic_args(cls):
            properties.setdefault(
                key, {"type": "string", "description": f"The {key} of an action that takes it."}
            )
    actions = [*_NATIVE_ACTIONS, *(snake(cls.model_fields["name"].default) for cls in generic)]
    properties = {
        "action": {"type": "string", "enum": actions, "description": "\n".join(described)},
        **properties,
    }
    return {
        "type": "function",
        "function": {
            "name": TOOL,
            "description": "Act on an Android phone by touch and system buttons. "
            f"The screen's resolution is {size[0]}x{size[1]}.",
            "parameters": {"type": "object", "properties": properties, "required": ["action"]},
        },
    }


class QwenMobileUse(Family):
    name: ClassVar[str] = "qwen-mobile-use"
    convention: ClassVar[Convention] = "pixels"
    resizes: ClassVar[bool] = True
    # Where the screenshot goes in the user turn: the Qwen2.5-VL cookbook's API example puts it
    # before the text, the Qwen3-VL one after.
    text_first: ClassVar[bool] = False

    def builtin_prompt(self, lang: str) -> str:
        return _PROMPT

    def action_list(self, lang: str, size: ImageSize) -> str:
        return f"<tools>\n{json.dumps(tool_schema(self.announced(size)), ensure_ascii=False)}\n</tools>"

    def announced(self, size: ImageSize) -> ImageSize:
        """The resolution the tool's description gives: the image's own, in pixels."""
        return size

    def first_user_text(self, task: str, info: str, earlier_tries: str | None) -> str:
        return f"{earlier_tries}\n{info}" if earlier_tries else info  # the task is put first by messages()

    def step_user_text(self, info: str) -> str:
        return info

    def messages(self, conversation: Conversation, task: str, image: dict[str, Any]) -> list[dict[str, Any]]:
        turns = conversation.kept_turns()
        done = "".join(
            f"Step {i}: {t.assistant}; " for i, t in enumerate(turns, 1) if t.assistant is not None
        )
        text = f"Task: {task}\nSteps done so far on this device: {done or '(none)'}\n{turns[-1].user if turns else ''}"
        parts = [{"type": "text", "text": text}, image]
        return [
            {"role": "system", "content": conversation.system},
            {"role": "user", "content": parts if self.text_first else parts[::-1]},
        ]

    def parse(self, text: str, size: ImageSize) -> ParsedReply:
        found = _TOOL_CALL.search(text)
        body = found.group(1) if found else text[text.find("{") : text.rfind("}") + 1]
        thinking = _THINKING.sub("", text[: found.start()] if found else "").strip()
        try:
            call = json.loads(body) if body else None
        except ValueError:
            call = None
        if not isinstance(call, dict):
            raise ActionParseError(
                "no readable <tool_call> in the model's reply", raw=text, agent_feedback=_FEEDBACK
            )
        args = call.get("arguments", call)
        if isinstance(args, str):  # some servers send the arguments as a JSON string
            try:
                args = json.loads(args)
            except ValueError:
                args = None
        if not isinstance(args, dict) or not isinstance(args.get("action"), str):
            raise ActionParseError("a tool call without arguments.action", raw=text, agent_feedback=_FEEDBACK)
        return ParsedReply(
            thinking=thinking, action=self._action(dict(args), size, text), action_text=body.strip()
        )

    def _action(self, args: dict[str, Any], size: ImageSize, raw: str) -> ActionModel:
        kind = args.pop("action")

        def pt(key: str = "coordinate") -> a.Point:
            value = args.get(key)
            if not (
                isinstance(value, list) and len(value) == 2 and all(isinstance(v, int | float) for v in value)
            ):
                raise ActionRejected(f"{kind}: {key} is not [x, y]", context={"raw": raw[:2000]},
                                     agent_feedback=f"{kind} needs {key}: [x, y] in pixels of the screenshot.")  # fmt: skip
            return to_grid(value[0], value[1], self.convention, size)

        try:
            match kind:
                case "click" | "tap":
                    return a.Tap(element=pt(), message=args.get("message"))
                case "long_press":
                    return a.LongPress(element=pt())
                case "swipe":
                    return a.Swipe(start=pt(), end=pt("coordinate2"))
                case "type":
                    return a.TypeText(text=str(args.get("text", "")))
                case "system_button":
                    button = str(args.get("button", ""))
                    if button in ("Back", "Home"):
                        return a.Back() if button == "Back" else a.Home()
                    raise ActionRejected(f"system_button {button!r} is not supported here", context={"raw": raw[:2000]},
                                         agent_feedback="Only the Back and Home buttons can be pressed.")  # fmt: skip
                case "key":
                    raise ActionRejected("key events are not supported here", context={"raw": raw[:2000]},
                                         agent_feedback="Use system_button with Back or Home instead of key.")  # fmt: skip
                case "open" | "open_app":
                    return a.Launch(app=str(args.get("text", "")))
                case "wait":
                    return a.Wait(duration=f"{args.get('time', 2)} seconds")
                case "answer":
                    return a.Finish(message=str(args.get("text", "")))
                case "terminate":
                    message = str(args.get("text") or "")
                    if args.get("status") == "failure":
                        return a.Finish(
                            message=message
                            if a.Finish(message=message).cannot
                            else f"Cannot finish the task. {message}".strip()
                        )
                    return a.Finish(message=message or "The task is done.")
        except ValueError as exc:  # pydantic's ValidationError is one
            raise ActionRejected(f"{kind}: {exc}", agent_feedback=f"The {kind} action could not be run: {exc}",
                                 context={"raw": raw[:2000]}) from exc  # fmt: skip
        cls = action_class(kind)
        if cls is None or cls.model_fields["name"].default in _NATIVE:
            raise UnknownAction(kind, raw=raw)
        values = {k: v for k, v in args.items() if k not in _POINT_KEYS}
        for key, source in zip(point_fields(cls), _POINT_KEYS, strict=False):
            values[key] = pt(source)
        try:
            return cls.model_validate({**values, "name": cls.model_fields["name"].default})
        except ValueError as exc:
            raise ActionRejected(f"{kind}: {exc}", agent_feedback=f"The {kind} action could not be run: {exc}",
                                 context={"raw": raw[:2000]}) from exc  # fmt: skip

    def arguments(self, action: ActionModel, size: ImageSize) -> dict[str, Any]:
        """The ``mobile_use`` arguments that stand for ``action``."""

        def p(point: a.Point) -> list[float]:
            return list(from_grid(point, self.convention, size))

        match action:
            case a.Tap(element=e, message=None):
                return {"action": "click", "coordinate": p(e)}
            case a.Tap(element=e, message=m):
                return {"action": "click", "coordinate": p(e), "message": m}
            case a.LongPress(element=e):
                return {"action": "long_press", "coordinate": p(e), "time": 1}
            case a.Swipe(start=s, end=e):
                return {"action": "swipe", "coordinate": p(s), "coordinate2": p(e)}
            case a.TypeText(text=t):
                return {"action": "type", "text": t}
            case a.Back():
                return {"action": "system_button", "button": "Back"}
            case a.Home():
                return {"action": "system_button", "button": "Home"}
            case a.Launch(app=app):
                return {"action": "open", "text": app}
            case a.Wait(duration=d):
                return {"action": "wait", "time": parse_duration(d)}
            case a.Finish() as f:
                return {
                    "action": "terminate",
                    "status": "failure" if f.cannot else "success",
                    "text": f.message,
                }
        cls = type(action)
        out: dict[str, Any] = {"action": snake(cls.model_fields["name"].default)}
        for key, target in zip(point_fields(cls), _POINT_KEYS, strict=False):
            out[target] = p(getattr(action, key))
        out.update({k: getattr(action, k) for k in _generic_args(cls) if getattr(action, k) is not None})
        return out

    def call_json(self, action: ActionModel, size: ImageSize) -> str:
        return json.dumps({"name": TOOL, "arguments": self.arguments(action, size)}, ensure_ascii=False)

    def write_reply(self, thinking: str, action: ActionModel, size: ImageSize) -> str:
        return f"Thought: {thinking}\n<tool_call>\n{self.call_json(action, size)}\n</tool_call>"

    def assistant_turn(self, parsed: ParsedReply, size: ImageSize) -> str:
        return self.call_json(parsed.action, size)  # the steps done so far are these calls, as text


class Qwen3MobileUse(QwenMobileUse):
    """Qwen3-VL's ``mobile_use`` (``qwen3-mobile-use``): the same tool and request, but points on a
    0..999 scale of the screen whatever its size (the QwenLM/Qwen3-VL mobile-agent cookbook announces
    the resolution as 999x999 and scales the model's numbers by the screenshot's size), so the image
    is sent as it is."""

    name: ClassVar[str] = "qwen3-mobile-use"
    convention: ClassVar[Convention] = "grid"
    resizes: ClassVar[bool] = False
    text_first: ClassVar[bool] = True

    def announced(self, size: ImageSize) -> ImageSize:
        return (a.GRID_SIZE - 1, a.GRID_SIZE - 1)
