"""UI-TARS (``ui-tars``): ``Thought: …`` then ``Action: click(start_box='(x,y)')``, pixels of the resized image.

The shape follows UI-TARS-1.5's mobile use as bytedance/UI-TARS documents it (docs/models.md): a
plain system turn, the instructions and the user's instruction together as the first user turn
(text only), earlier replies as assistant text, the newest screenshot alone in the last user turn
(with the loop's one-line screen info). Points are absolute pixels of the image as sent, which the
client smart-resizes itself (``coords.py``); a box ``(x1,y1,x2,y2)`` stands for its centre, and
``<point>x y</point>`` / ``point=`` (the Doubao form) are read as ``start_box``.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from worker.agent import actions as a
from worker.agent.call_reader import CallReader, CallSyntaxError
from worker.agent.conversation import Conversation
from worker.agent.errors import ActionParseError, ActionRejected, UnknownAction
from worker.agent.families.base import Family, action_class, generic_actions, point_fields, snake
from worker.agent.families.coords import RESIZE_FACTOR, Convention, ImageSize, from_grid, to_grid
from worker.agent.grammar import ActionModel
from worker.agent.parser import ParsedReply

SYSTEM = "You are a helpful assistant."
INSTRUCTION_HEADER = "## User Instruction"

_PROMPT = """You operate an Android phone for the user. Each turn you are shown the current screen; choose the one next action that brings the task closer to done.

## Reply format
```
Thought: a short account of what you see and why you act
Action: one action call
```

## Actions
{actions}

## Notes
- Points are pixels of the screenshot you are shown ({screen_width}x{screen_height}), written '(x,y)'.
- Give exactly one action per reply; when the task is done, call finished(content='...') with the result.
- Today's date: {date}.
"""

# The actions UI-TARS has its own words for: its function name, then how its arguments map.
_NATIVE_LINES = (
    ("click(start_box='(x,y)')", "Tap the point."),
    ("long_press(start_box='(x,y)')", "Press and hold the point."),
    ("type(content='text')", "Type into the focused field (tap the field first); it is cleared before."),
    (
        "scroll(start_box='(x,y)', direction='down or up or right or left')",
        "Scroll the content from the point.",
    ),
    ("drag(start_box='(x1,y1)', end_box='(x2,y2)')", "Swipe from one point to another."),
    ("open_app(app_name='name')", "Open an app by its name."),
    ("press_home()", "Go to the home screen."),
    ("press_back()", "Go back."),
    ("wait()", "Wait for the screen to change."),
    ("call_user(content='why')", "Hand the phone to the user (a login, a captcha, a decision)."),
    ("finished(content='result')", "End the task; content says what was done."),
)
_NATIVE = {"Tap", "Long Press", "Type", "Swipe", "Launch", "Home", "Back", "Wait", "Take_over", a.FINISH}
_BOX = re.compile(r"<\|box_(?:start|end)\|>")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_ACTION = re.compile(r"Action\s*[:：]")
_LABELS = re.compile(r"^\s*(?:Thought|Reflection|Action_Summary)\s*[:：]\s*", re.MULTILINE)
_SCROLL = {
    "down": (0, -1),
    "up": (0, 1),
    "left": (1, 0),
    "right": (-1, 0),
}  # the finger moves against the content
_SCROLL_GRID = 400
_FEEDBACK = (
    "Your reply held no action I could run. Write 'Thought: …' and then one line "
    "\"Action: click(start_box='(x,y)')\" (or another action from the list)."
)


def _point(value: Any, key: str, size: ImageSize, raw: str) -> a.Point:
    numbers = [float(n) for n in _NUMBER.findall(str(value))] if not isinstance(value, list) else value
    if len(numbers) == 4:  # a box: its centre
        numbers = [(numbers[0] + numbers[2]) / 2, (numbers[1] + numbers[3]) / 2]
    if len(numbers) != 2:
        raise ActionRejected(
            f"{key}={value!r} is not a point",
            agent_feedback=f"{key} must be a point written '(x,y)' in pixels of the screenshot.",
            context={"raw": raw[:2000]},
        )
    return to_grid(numbers[0], numbers[1], UiTars.convention, size)


def _written_point(point: a.Point, size: ImageSize, boxed: bool) -> str:
    x, y = from_grid(point, UiTars.convention, size)
    text = f"({x},{y})"
    return f"<|box_start|>{text}<|box_end|>" if boxed else text


class UiTars(Family):
    name: ClassVar[str] = "ui-tars"
    convention: ClassVar[Convention] = "pixels"
    resizes: ClassVar[bool] = True
    min_pixels: ClassVar[int] = 100 * RESIZE_FACTOR * RESIZE_FACTOR  # bytedance/UI-TARS codes/ui_tars/action_parser.py

    def builtin_prompt(self, lang: str) -> str:
        return _PROMPT

    def action_list(self, lang: str, size: ImageSize) -> str:
        lines = [f"{usage}  # {purpose}" for usage, purpose in _NATIVE_LINES]
        for cls in generic_actions(_NATIVE):
            args = ", ".join(
                f"{key}='(x,y)'" if key in point_fields(cls) else f"{key}=''"
                for key in cls.model_fields
                if key != "name"
            )
            lines.append(f"{snake(cls.model_fields['name'].default)}({args})  # {cls.purpose.en}")
        return "\n".join(lines)

    def first_user_text(self, task: str, info: str, earlier_tries: str | None) -> str:
        return (
            f"{earlier_tries}\n\n{info}" if earlier_tries else info
        )  # the task goes in the instruction turn

    def step_user_text(self, info: str) -> str:
        return info

    def messages(self, conversation: Conversation, task: str, image: dict[str, Any]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"{conversation.system}\n{INSTRUCTION_HEADER}\n{task}"},
        ]
        turns = conversation.kept_turns()
        for i, turn in enumerate(turns):
            if i == len(turns) - 1:
                out.append({"role": "user", "content": [image, {"type": "text", "text": turn.user}]})
            elif turn.user.strip():
                out.append({"role": "user", "content": turn.user})
            if turn.assistant is not None:
                out.append({"role": "assistant", "content": turn.assistant})
        return out

    def parse(self, text: str, size: ImageSize) -> ParsedReply:
        clean = _BOX.sub("", text)
        found = list(_ACTION.finditer(clean))
        if not found:
            raise ActionParseError("no 'Action:' in the model's reply", raw=text, agent_feedback=_FEEDBACK)
        marker = found[-1]
        thinking = _LABELS.sub("", clean[: marker.start()]).strip()
        body = clean[marker.end() :].strip().split("\n\n")[0].strip()
        reader = CallReader(body, 0)
        try:
            call = reader.read()
        except CallSyntaxError as exc:
            raise ActionParseError(
                f"unreadable action call: {exc.reason}", raw=text, agent_feedback=_FEEDBACK
            ) from exc
        action = self._action(call.func, dict(call.kwargs), size, text)
        return ParsedReply(thinking=thinking, action=action, action_text=body[: call.end])

    def _action(self, func: str, kw: dict[str, Any], size: ImageSize, raw: str) -> ActionModel:
        for old, new in (("point", "start_box"), ("start_point", "start_box"), ("end_point", "end_box")):
            if old in kw:
                kw[new] = kw.pop(old)

        def pt(key: str) -> a.Point:
            if key not in kw:
                raise ActionRejected(f"{func} without {key}=", agent_feedback=f"{func} needs {key}='(x,y)'.",
                                     context={"raw": raw[:2000]})  # fmt: skip
            return _point(kw[key], key, size, raw)

        try:
            match func:
                case "click" | "left_single" | "tap":
                    return a.Tap(element=pt("start_box"), message=kw.get("message"))
                case "long_press":
                    return a.LongPress(element=pt("start_box"))
                case "type":
                    return a.TypeText(text=str(kw.get("content", "")).rstrip("\n"))
                case "drag" | "swipe":
                    return a.Swipe(start=pt("start_box"), end=pt("end_box"))
                case "scroll":
                    start = pt("start_box")
                    dx, dy = _SCROLL.get(str(kw.get("direction", "down")).lower(), (0, -1))
                    end = tuple(
                        min(a.GRID_SIZE - 1, max(0, c + d * _SCROLL_GRID)) for c, d in zip(start, (dx, dy), strict=False)
                    )
                    return a.Swipe(start=start, end=end)  # type: ignore[arg-type]
                case "open_app":
                    return a.Launch(app=str(kw.get("app_name", "")))
                case "press_home":
                    return a.Home()
                case "press_back":
                    return a.Back()
                case "wait":  # UI-TARS's wait() takes no argument and stands for five seconds
                    return a.Wait(duration=str(kw.get("time", "5")) + " seconds")
                case "call_user":
                    return a.TakeOver(message=str(kw.get("content") or "Please take over."))
                case "finished":
                    return a.Finish(message=str(kw.get("content", "")))
        except ValueError as exc:  # pydantic's ValidationError is one
            raise ActionRejected(f"{func}: {exc}", agent_feedback=f"The {func} action could not be run: {exc}",
                                 context={"raw": raw[:2000]}) from exc  # fmt: skip
        cls = action_class(func)
        if cls is None or cls.model_fields["name"].default in _NATIVE:
            raise UnknownAction(func, raw=raw)
        points = set(point_fields(cls))
        args = {k: (_point(v, k, size, raw) if k in points else v) for k, v in kw.items()}
        try:
            return cls.model_validate({**args, "name": cls.model_fields["name"].default})
        except ValueError as exc:
            raise ActionRejected(f"{func}: {exc}", agent_feedback=f"The {func} action could not be run: {exc}",
                                 context={"raw": raw[:2000]}) from exc  # fmt: skip

    def _call(self, action: ActionModel, size: ImageSize, boxed: bool) -> str:
        def p(point: a.Point) -> str:
            return _written_point(point, size, boxed)

        def q(text: str) -> str:
            return "'" + text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"

        match action:
            case a.Tap(element=e, message=None):
                return f"click(start_box='{p(e)}')"
            case a.Tap(element=e, message=m):
                return f"click(start_box='{p(e)}', message={q(m or '')})"
            case a.LongPress(element=e):
                return f"long_press(start_box='{p(e)}')"
            case a.TypeText(text=t):
                return f"type(content={q(t)})"
            case a.Swipe(start=s, end=e):
                return f"drag(start_box='{p(s)}', end_box='{p(e)}')"
            case a.Launch(app=app):
                return f"open_app(app_name={q(app)})"
            case a.Home():
                return "press_home()"
            case a.Back():
                return "press_back()"
            case a.Wait():
                return "wait()"
            case a.TakeOver(message=m):
                return f"call_user(content={q(m)})"
            case a.Finish(message=m):
                return f"finished(content={q(m)})"
        cls = type(action)
        points = set(point_fields(cls))
        args = []
        for key in cls.model_fields:
            value = getattr(action, key)
            if key == "name" or value is None:
                continue
            args.append(f"{key}='{p(value)}'" if key in points else f"{key}={q(str(value))}")
        return f"{snake(cls.model_fields['name'].default)}({', '.join(args)})"

    def write_reply(self, thinking: str, action: ActionModel, size: ImageSize) -> str:
        return f"Thought: {thinking}\nAction: {self._call(action, size, boxed=False)}"

    def assistant_turn(self, parsed: ParsedReply, size: ImageSize) -> str:
        # Past replies carry the box tokens the served text drops (bytedance/UI-TARS README_deploy).
        return f"Thought: {parsed.thinking}\nAction: {self._call(parsed.action, size, boxed=True)}"
