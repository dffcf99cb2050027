"""Reads a model reply: splits the thinking from the action and parses the action call, without eval.

Served models wrap the same call in different ways: ``<think>…</think><answer>CALL</answer>``,
plain thinking then CALL on its own line, ``<answer>CALL`` with no thinking,
``<|begin_of_box|>CALL<|end_of_box|>``, CALL followed by a stray ``</answer>``, backticks or a
code fence. CALL is ``do(action="Name", key=value, …)`` or ``finish(message="…")``, read by
``call_reader.py``.

The action is the last thing in a reply, so candidates are tried from the last one back and the
first that parses and reaches the end of the reply (ignoring closing tags and fences) wins. A reply
without any call is an ``ActionParseError``, never a finish.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from worker.agent.actions import ACTIONS, FINISH, GRID_SIZE, Action, ActionModel, Finish
from worker.agent.call_reader import Call, CallReader, CallSyntaxError, unescape
from worker.agent.errors import ActionError, ActionParseError, ActionRejected, UnknownAction

# A call starts at a bare `do(` or `finish(`; `undo(` or `my_finish(` are words, not calls.
_CALL_START = re.compile(r"(?<![A-Za-z0-9_])(do|finish)\s*\(")
_SPECIAL_TOKEN = re.compile(r"<\|[A-Za-z0-9_]+\|>")
_TAG = re.compile(r"</?(?:think|answer)>")
_FENCE_OPENER = re.compile(r"(?:```[A-Za-z0-9_+-]*|`)\s*\Z")
# Replies are bounded by the model's max_tokens; this only keeps hostile text from costing O(n²).
_MAX_CANDIDATES = 32
_NO_ACTION_FEEDBACK = (
    "Your reply held no action I could run. Think inside <think>…</think>, then give exactly one "
    'action inside <answer>…</answer>, for example do(action="Back") or finish(message="…").'
)


class ParsedReply(BaseModel):
    """One model reply: its reasoning, the action it chose, and the call text as the model wrote it."""

    model_config = ConfigDict(frozen=True)

    thinking: str
    action: Action
    action_text: str


def _junk_tail_start(text: str) -> int:
    """Index where the reply's closing junk begins: whitespace, backticks, </answer>, <|…|> tokens."""
    end = len(text)
    while True:
        before = end
        while end and (text[end - 1].isspace() or text[end - 1] == "`"):
            end -= 1
        for tag in ("</answer>", "</think>", "</s>"):
            if text.endswith(tag, 0, end):
                end -= len(tag)
        opener = text.rfind("<|", max(0, end - 64), end)
        if opener >= 0 and _SPECIAL_TOKEN.fullmatch(text, opener, end):
            end = opener
        if end == before:
            return end


def _greedy_calls(call: Call, text: str, tail: int) -> list[Call]:
    """Variants of ``call`` whose last string runs to the final quote-and-paren of the reply."""
    closing = text[:tail].rstrip()
    if not closing.endswith(")"):
        return []
    close_quote = closing[:-1].rstrip()
    variants = []
    for start in reversed(call.strings):
        if start.key == "action":
            continue  # an action name never holds quotes
        quote_at = len(close_quote) - 1
        if close_quote.endswith(start.quote) and quote_at > start.pos:
            kwargs = {**start.kwargs_before, start.key: unescape(text[start.pos + 1 : quote_at])}
            variants.append(Call(call.func, call.start, tail, kwargs))
    return variants


_NAME_KEYS = {re.sub(r"[\s_-]", "", name).lower(): name for name in ACTIONS if name != FINISH}


def _canonical_name(written: str) -> str | None:
    # "long_press", "LongPress" and "Take over" name one action each; matching loosely is unambiguous.
    return _NAME_KEYS.get(re.sub(r"[\s_-]", "", written).lower())


def _build(call: Call, raw: str) -> ActionModel:
    """Turn a parsed call into its action model, or raise the ActionError the model should hear."""
    args = dict(call.kwargs)
    if call.func == "finish":
        name = FINISH
    else:
        written = args.pop("action", None)
        if not isinstance(written, str):
            raise ActionRejected(
                "do(...) without a string action=",
                agent_feedback='Every do(...) call needs its action first, e.g. do(action="Tap", element=[x,y]).',
                context={"raw": raw[:2000]},
            )
        if re.sub(r"\s", "", written).lower() == FINISH:
            raise ActionRejected(
                'do(action="finish") instead of finish(...)',
                agent_feedback='To end the task write finish(message="…"), not do(action="finish").',
                context={"raw": raw[:2000]},
            )
        name = _canonical_name(written) or ""
        if not name:
            raise UnknownAction(written, raw=raw)
    cls = ACTIONS[name]
    for written_arg, field in cls.grammar_args.items():
        if field in args:
            args[f"{field} "] = args.pop(field)  # the field's own name is no grammar argument
        if written_arg in args:
            args[field] = args.pop(written_arg)
    if "name" in args:
        args["name "] = args.pop("name")  # not a grammar argument: let extra="forbid" report it
    try:
        return cls.model_validate({**args, "name": name})
    except ValidationError as exc:
        problems = [_describe(err) for err in exc.errors()]
        raise ActionRejected(
            f"{name}: {'; '.join(problems)}",
            agent_feedback=f"The {name} action could not be run: {'; '.join(problems)}. "
            f"Write it as {cls.usage}.",
            context={"raw": raw[:2000], "name": name},
        ) from exc


def _describe(err: Any) -> str:
    loc = err.get("loc") or ("?",)
    arg = str(loc[0]).strip()
    kind = err.get("type", "")
    if kind == "missing" and len(loc) == 1:  # a point with too few numbers is "missing" at (arg, index)
        return f"the argument {arg}= is missing"
    if kind == "extra_forbidden":
        return f"it takes no argument {arg}="
    if kind in ("less_than_equal", "greater_than_equal") and len(loc) > 1:
        return f"{arg}= is off the screen (got {err.get('input')!r}; coordinates are integers 0–{GRID_SIZE - 1})"
    if arg in ("element", "start", "end"):
        return f"{arg}= must be a point [x,y] of two integers 0–{GRID_SIZE - 1}"
    msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
    return f"{arg}=: {msg}"


def _thinking(prefix: str) -> str:
    text = _TAG.sub("", _SPECIAL_TOKEN.sub("", prefix)).strip()
    return _FENCE_OPENER.sub("", text).strip()


def parse_reply(text: str) -> ParsedReply:
    """Split a model reply into thinking and one typed action.

    Raises ActionParseError when the reply holds no readable call, UnknownAction for a well-formed
    call of an action we do not know, and ActionRejected for a known action with arguments that
    cannot work (off-grid point, missing argument).
    """
    tail = _junk_tail_start(text)
    answer_at = text.rfind("<answer>")
    region = answer_at + len("<answer>") if answer_at >= 0 else 0
    starts = [m.start() for m in _CALL_START.finditer(text, 0, tail)][-_MAX_CANDIDATES:]
    fallback: tuple[Call, ActionModel] | None = None
    first_error: ActionError | None = None
    for start in reversed(starts):
        latest = start == starts[-1]
        reader = CallReader(text, start)
        errors: list[ActionError] = []
        try:
            call: Call | None = reader.read()
        except CallSyntaxError as exc:
            call = None
            errors.append(_syntax_error(text, reader.call, exc))
        if call is not None and call.end == tail:
            try:
                return _reply(text, call, _build(call, text))
            except ActionError as exc:
                errors.append(exc)
        else:
            # Only a call that does not read cleanly to the end may have unescaped inner quotes.
            for variant in _greedy_calls(reader.call, text, tail):
                try:
                    return _reply(text, variant, _build(variant, text))
                except ActionError as exc:
                    errors.append(exc)
            if call is not None and latest and start >= region and call.func != FINISH:
                # Prose after the last call is tolerated; a finish must end the reply, and a call in
                # the thinking never stands in for a broken one after it.
                try:
                    fallback = (call, _build(call, text))
                except ActionError as exc:
                    errors.append(exc)
        if first_error is None and errors:
            # The latest call speaks for the reply; a well-formed complaint beats a syntax one.
            first_error = next((e for e in errors if not isinstance(e, ActionParseError)), errors[0])
    if fallback is not None:
        return _reply(text, *fallback)
    if first_error is not None:
        raise first_error
    raise ActionParseError("no action in the model's reply", raw=text, agent_feedback=_NO_ACTION_FEEDBACK)


def _reply(text: str, call: Call, action: ActionModel) -> ParsedReply:
    return ParsedReply(
        thinking=_thinking(text[: call.start]), action=action, action_text=text[call.start : call.end]
    )


def _syntax_error(text: str, call: Call, exc: CallSyntaxError) -> ActionParseError:
    snippet = text[call.start : min(len(text), exc.pos + 20, call.start + 200)]
    return ActionParseError(
        f"unreadable action call at {exc.pos}: {exc.reason}",
        raw=text,
        agent_feedback=f"Your action could not be read ({exc.reason} near {snippet!r}). "
        'Write one call such as do(action="Tap", element=[x,y]) with name="value" arguments, '
        'quotes inside strings escaped as \\".',
    )


def parse_action(text: str) -> Action:
    """The action in a model reply; same errors as ``parse_reply``."""
    return parse_reply(text).action


def _quote(value: str) -> str:
    escaped = (
        value.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return f'"{escaped}"'


def _literal(value: Any) -> str:
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    return repr(value)


def format_action(action: ActionModel) -> str:
    """The canonical grammar text of an action, e.g. ``do(action="Tap", element=[500, 100])``."""
    written = {field: arg for arg, field in type(action).grammar_args.items()}
    args = [
        f"{written.get(key, key)}={_literal(getattr(action, key))}"
        for key in type(action).model_fields
        if key != "name" and getattr(action, key) is not None
    ]
    if isinstance(action, Finish):
        return f"finish({', '.join(args)})"
    return f"do({', '.join([f'action={_quote(action.name)}', *args])})"  # type: ignore[attr-defined]


def format_reply(thinking: str, action: ActionModel) -> str:
    """An assistant turn as the model is trained to write it: ``<think>…</think><answer>…</answer>``."""
    return f"<think>{thinking}</think><answer>{format_action(action)}</answer>"


__all__ = ["ParsedReply", "format_action", "format_reply", "parse_action", "parse_reply"]
