"""The step loop: capture → ask the model → parse → act → wait for the screen to settle → record.

One async core for every caller (the Celery worker, ``phonefleet run``, tests). It owns no
process-global state: everything a run needs is passed in. People steer it through awaited hooks
and an ``AgentSteering`` (cancel, pause), never through blocking callbacks.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from PIL import Image

from device_pool.driver import AppCatalog, is_secure_frame
from device_pool.driver.ui_tree import focused_is_password, ui_elements
from device_pool.errors import DeviceError
from worker.agent import actions as a
from worker.agent import prompts
from worker.agent.app_policy import REFUSED, AppPolicy
from worker.agent.conversation import Conversation
from worker.agent.errors import ActionError, ModelError, NoAnswer
from worker.agent.executor import ActionExecutor, Device
from worker.agent.families import family, planner
from worker.agent.families.coords import to_grid
from worker.agent.images import EncodedImage, image_part
from worker.agent.parser import ParsedReply, format_action
from worker.agent.redaction import RedactionRules, mask, ocr_regions, regions
from worker.agent.results import WAITING, AgentResult, FailReason, RunStatus, StepRecord, StepTimings
from worker.agent.steering import AgentHooks, AgentState, AgentSteering

logger = logging.getLogger(__name__)

REDACTED = "•••"  # what a step keeps of text typed into a password field


class ModelReply(Protocol):
    content: str
    time_to_first_token_s: float | None
    prompt_tokens: int
    completion_tokens: int


class Model(Protocol):
    """The model as the loop needs it (``worker.agent.model_client.ModelClient`` is one)."""

    async def chat(
        self, messages: list[dict[str, Any]], *, on_retry: Callable[[str], Awaitable[None]] | None = None
    ) -> ModelReply: ...
    async def encode_image(self, image: Image.Image) -> EncodedImage: ...


class PhoneDevice(Device, Protocol):
    async def screenshot(self, format: str = ...) -> Image.Image: ...
    async def screen_size(self) -> tuple[int, int]: ...
    async def foreground(self) -> tuple[str, str]: ...
    async def ui_dump(self) -> str: ...
    async def wait_for_settle(
        self, timeout: float = ..., interval: float = ..., stable_frames: int = ...
    ) -> Any: ...


@dataclass(frozen=True)
class AgentConfig:
    max_steps: int = 30
    budget_s: float = 600.0  # wall clock for the whole run
    lang: str = "en"  # "zh" for AutoGLM-Phone-9B, "en" for the multilingual model
    # The model's reply grammar (worker/agent/families/: "autoglm", "ui-tars", "qwen-mobile-use", "qwen3-mobile-use"), and
    # an endpoint's own prompt (its prompt_file's text, placeholders unfilled) in place of the family's.
    family: str = "autoglm"
    prompt: str | None = None
    # A planner/grounder pair (families/planner.py): the grounder's family. The model the loop is
    # given is then the planner (the loop's own grammar, targets in words; ``family`` is not used)
    # and ``run_agent``'s ``grounder`` finds each target on the screenshot.
    grounder_family: str | None = None
    planner_vision: bool = True  # False: the planner gets the screen's elements in words, no image
    # The screenshot's pixel budget for families that resize it themselves (the model client's
    # image_max_pixels: the two must agree, or the client scales the image again).
    image_max_pixels: int = 1_000_000
    max_parse_errors: int = 3  # in a row
    # The loop rules (docs/agent.md, "Asking instead of looping"); 0 turns a rule off.
    stuck_repeats: int = 4  # same screen and same action this many times in a row
    stuck_cycle_max: int = 4  # a cycle of 2..this many (screen, action) pairs ...
    stuck_cycle_repeats: int = 2  # ... repeated this many times in a row
    stuck_no_change: int = 4  # actions on the phone in a row that changed nothing (or were rejected)
    # On a loop, or a finish saying the task cannot be done (actions.Finish.cannot): "ask" a person
    # (the run waits for an answer, a takeover or a cancel); "fail" ends failed/stuck, and such a
    # finish ends the run as any finish does.
    on_stuck: Literal["ask", "fail"] = "ask"
    # What is masked in each screenshot before the model sees it and before it is stored.
    redaction: RedactionRules = field(default_factory=RedactionRules)
    history_tokens: int = 12000
    wait_cap_s: float = 10.0
    settle_timeout_s: float = 3.0
    # A launch shows a starting window (~250 ms on the virtual phone, longer on real ones) that must
    # not count as settled; other actions settle after a short still period.
    settle_interval_s: float = 0.05
    settle_frames: int = 3
    launch_settle_interval_s: float = 0.3
    # How long, in all over the run, the model server may be failing (unreachable, 5xx, 429, no
    # answer) while the run waits for it, beyond the client's own retries of each call: the call is
    # made again after a pause (doubling from model_outage_backoff_s, at most ..._max_s). Past it the
    # run ends failed/model_unavailable. 0: the first call that fails after its retries ends it.
    model_outage_budget_s: float = 0.0
    model_outage_backoff_s: float = 1.0
    model_outage_backoff_max_s: float = 10.0


def _screen_key(image: Image.Image) -> bytes:
    # A thumbnail's hash: cheap, and blind to nothing a model would act on differently.
    return hashlib.blake2b(image.reduce(8).tobytes(), digest_size=16).digest()


def _describe(action: a.ActionModel) -> str:
    """An action as a person reads it in a question: ``Tap(element=[500, 2])``, ``Back``."""
    fields = action.model_dump(mode="json", exclude={"name"}, exclude_none=True)
    args = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in fields.items())
    return f"{action.name}({args})" if args else str(action.name)


class _AgentLoop:
    def __init__(
        self,
        task: str,
        device: PhoneDevice,
        model: Model,
        config: AgentConfig,
        hooks: AgentHooks,
        steering: AgentSteering,
        apps: AppCatalog,
        today: dt.date,
        earlier_tries: str | None = None,
        app_policy: AppPolicy | None = None,
        grounder: Model | None = None,
    ) -> None:
        self.task = task
        # The apps it may use (app_policy.py); None: any. ``acted``: an action since the last capture
        # may have changed the app in front; ``excursion``: the app outside the list a person was
        # asked about (not asked again until the run is back in an allowed app).
        self.app_policy = app_policy
        self.acted = False
        self.excursion: str | None = None
        self.earlier_tries = earlier_tries  # what went wrong on this task's earlier tries, for the model
        self.device = device
        self.model = model
        self.config = config
        self.hooks = hooks
        self.steering = steering
        self.apps = apps
        self.grounder = grounder
        self.grounder_family = family(config.grounder_family) if config.grounder_family else None
        if (self.grounder is None) != (self.grounder_family is None):
            raise ValueError("a planner/grounder pair needs both the grounder's model and its family")
        # A pair's planner speaks the loop's own grammar (autoglm's), its targets in words.
        self.family = family("autoglm" if self.grounder_family else config.family)
        self.replies: list[dict[str, Any]] | None = None  # a pair's step: each model's reply and time
        self.sent_size: tuple[int, int] = (1, 1)  # the last screenshot as sent (width, height)
        self.today = today
        # The system text needs the size of the image sent (pixel families announce it): set at the first ask.
        self.conversation = Conversation("", config.history_tokens)
        self.steps: list[StepRecord] = []
        self.started = time.monotonic()
        self.pending_notes: list[str] = []
        self.foreground = ""  # the package in front at the last capture
        self.next_frame: Image.Image | None = None
        self.step_ui_xml: str | None = None  # the view tree the current step read for redaction
        self.parse_errors = 0
        # The (screen, action) pairs since the last time a person stepped in, for the loop rules,
        # with each action as a question names it; and the actions in a row that changed nothing.
        self.history: list[tuple[bytes, str]] = []
        self.tried: list[str] = []
        self.no_change: list[str] = []
        self.model_failing = False  # the hooks were told the model server fails (on_model_unavailable)
        # The model server's outages, against config.model_outage_budget_s: the total of those that
        # ended, and when the one in progress began (monotonic; None: the server answers).
        self.outage_spent_s = 0.0
        self.outage_since: float | None = None
        self.outage_pauses = 0  # pauses in the outage in progress (the backoff's exponent)
        self.secret_names: list[str] = []  # the secrets the model is told it may type (names only)
        self.redactions: list[dict[str, Any]] = []  # what the current step's capture masked

    def remaining(self) -> float:
        return self.config.budget_s - (time.monotonic() - self.started)

    def result(self, status: RunStatus, message: str, reason: FailReason | None = None) -> AgentResult:
        return AgentResult(status, message, reason, self.steps, time.monotonic() - self.started)

    async def run(self) -> AgentResult:
        try:
            size = await self.device.screen_size()
        except DeviceError as exc:
            return self.result(RunStatus.FAILED, f"phone unavailable: {exc}", FailReason.DEVICE_ERROR)
        self.executor = ActionExecutor(
            self.device, size, self.hooks, self.steering, wait_cap_s=self.config.wait_cap_s,
            lang=self.config.lang,
        )  # fmt: skip
        await self.hooks.on_state(AgentState.RUNNING)
        if self.app_policy is not None:
            self.pending_notes.append(
                f"You may use only these apps (package names): {self.app_policy.listed()}, and the home screen."
            )
        try:
            self.secret_names = list(await self.hooks.secret_names())
        except Exception:  # the model then hears of no secret: a database blip must not end the run
            logger.warning("could not read the names of the tenant's secrets", exc_info=True)
        secrets = prompts.secrets_message(self.config.lang, self.secret_names)
        if secrets:
            self.pending_notes.append(secrets + "\n")  # a block of its own: a blank line ends it
        while True:
            if self.steering.paused and not self.steering.cancelled:
                await self.hooks.on_state(AgentState.USER_CONTROL)
                await self.steering.wait_running()
                if not self.steering.cancelled:
                    await self.hooks.on_state(AgentState.RUNNING)
                    note = self.steering.take_resume_note()
                    told = f"The user took control and handed back. Their note: {note or '(none)'}"
                    self.pending_notes.append(await self.executor.what_the_user_did(told))
                    self.next_frame = None  # the person changed the screen
                    self._fresh_start()
            if self.steering.cancelled:
                return self.result(RunStatus.CANCELLED, self.steering.cancel_reason or "cancelled")
            if self.remaining() <= 0:
                return self.result(RunStatus.TIMED_OUT, f"no result within {self.config.budget_s:g} s")
            if len(self.steps) >= self.config.max_steps:
                return self.result(
                    RunStatus.FAILED, f"no result in {self.config.max_steps} steps", FailReason.MAX_STEPS
                )
            try:
                outcome = await self.step()
            except DeviceError as exc:
                logger.warning("device failed: %s", exc)
                return self.result(RunStatus.FAILED, f"phone failed: {exc}", FailReason.DEVICE_ERROR)
            except NoAnswer as exc:
                logger.info("nobody answered: %s", exc.message)
                return self.result(RunStatus.FAILED, exc.message, FailReason.NO_ANSWER)
            except ModelError as exc:
                logger.warning("model failed: %s", exc)
                if not exc.retryable:
                    return self.result(
                        RunStatus.FAILED, f"model server failed: {exc}", FailReason.MODEL_ERROR
                    )
                budget = self.config.model_outage_budget_s
                spent = f" (failing for {self._outage_spent():.0f} s of an outage budget of {budget:g} s)"
                return self.result(
                    RunStatus.FAILED,
                    f"model server failed{spent if budget > 0 else ''}: {exc}",
                    FailReason.MODEL_UNAVAILABLE,
                )
            if outcome is not None:
                return outcome

    async def _capture(self, timings: StepTimings) -> tuple[Image.Image, str]:
        t0 = time.monotonic()
        image = self.next_frame or await self.device.screenshot("raw")
        timings.captured_at = time.monotonic()
        self.next_frame = None
        package, _activity = await self.device.foreground()
        self.foreground = package
        image, ui_xml = await self._redact(image)
        self.step_ui_xml = ui_xml  # the view tree this step read (None: none), read again by no one
        timings.capture_s = time.monotonic() - t0
        if is_secure_frame(image):
            self.pending_notes.append(await self._protected_note(image.size, ui_xml))
        if self.redactions:
            masked = [(r["kind"], _grid_centre(r["bounds"], image.size)) for r in self.redactions]
            self.pending_notes.append(prompts.redacted_message(self.config.lang, masked))
        return image, self.apps.label(package)

    async def _redact(self, image: Image.Image) -> tuple[Image.Image, str | None]:
        """``image`` with its password fields (and, opted in, text patterns) masked, read from the
        view tree and, opted in, from OCR of the image (``redaction.py``); the regions are kept for
        the step's record, and whether the focused field is a password for the executor (what is
        typed there is masked too). A tree that cannot be read masks nothing from it, with a warning
        (nothing to locate); OCR that fails masks nothing from OCR, with a warning. Also answers the
        view tree it read (None: not read), so a protected screen's note does not read it again."""
        rules = self.config.redaction
        self.redactions = []
        self.executor.focused_password = False
        if not rules.active:
            return image, None
        found = []
        ui_xml: str | None = None
        try:
            ui_xml = await self.device.ui_dump()
        except DeviceError:
            logger.warning("the view tree could not be read; the screenshot is not redacted from it", exc_info=True)
            self.executor.focused_password = True  # what is typed now is masked, to be safe
        else:
            self.executor.focused_password = focused_is_password(ui_xml)
            found = regions(ui_xml, rules, self.executor.size, image.size)
        image = mask(image, found)
        if rules.ocr_patterns:
            try:
                read = await asyncio.to_thread(ocr_regions, image, rules, found)
            except Exception:  # the engine's failure must not end the task; the tree's masking stands
                logger.warning("OCR failed; the screenshot is not redacted from OCR", exc_info=True)
            else:
                image = mask(image, read)
                found = [*found, *read]
        self.redactions = [region.as_json() for region in found]
        return image, ui_xml

    async def _protected_note(self, size: tuple[int, int], ui_xml: str | None) -> str:
        """A secure window captures black: the model is told so, with the labels of the view tree's
        elements (which a secure window still gives) and their centres on its grid. ``ui_xml``: the
        tree this step already read (for redaction), else it is read here."""
        try:
            found = ui_elements(ui_xml if ui_xml is not None else await self.device.ui_dump())
        except Exception:  # a phone (or a stand-in) without a readable tree: say so
            logger.warning("protected screen: the view tree could not be read", exc_info=True)
            return prompts.protected_screen_message(self.config.lang, None)
        elements = [(element.label, _grid_centre(element.bounds, size)) for element in found]
        return prompts.protected_screen_message(self.config.lang, elements)

    async def _ask_model(
        self, image: Image.Image, app: str, timings: StepTimings
    ) -> ModelReply | AgentResult | None:
        """The model's reply; an AgentResult when the run must end; None when paused mid-call."""
        info = prompts.screen_info(app)
        encoded = await self.model.encode_image(self.family.prepare_image(image, self.config.image_max_pixels))
        timings.image_bytes = encoded.bytes_len
        self.sent_size = (encoded.width, encoded.height)
        if not self.conversation.turns:
            self.conversation.system = self.family.prompt(
                self.config.lang, self.today, self.sent_size, self.config.prompt
            )
            if self.grounder_family is not None:
                self.conversation.system += "\n\n" + planner.PLANNER_NOTE
            text = self.family.first_user_text(self.task, info, self.earlier_tries)
        else:
            text = self.family.step_user_text(info)
        if self.pending_notes:
            text = "\n".join([*self.pending_notes, text])
            self.pending_notes.clear()
        blind = self.grounder_family is not None and not self.config.planner_vision
        if blind:
            text = f"{text}\n{await self._screen_in_words()}"
        self.conversation.add_user(text)
        if blind:  # the planner speaks autoglm's shape: its turns without the screenshot
            messages = self.conversation.messages(None)
        else:
            messages = self.family.messages(self.conversation, self.task, image_part(encoded))
        t0 = time.monotonic()
        reply = await self._chat(messages)  # raises ModelError past the client's retries and the budget
        timings.model_s = time.monotonic() - t0
        if reply is not None:
            if self.grounder_family is not None:
                timings.planner_s = timings.model_s
                self.replies = [
                    {"role": "planner", "reply": reply.content, "model_s": round(timings.model_s, 4)}
                ]
            return reply
        return self._no_reply()

    def _no_reply(self) -> AgentResult | None:
        """No model answered (the planner, or a pair's grounder): cancelled, paused (None: the
        question is asked again after the pause) or out of time."""
        self._outage_ends()  # a person's pause is no outage time
        self.conversation.turns.pop()  # the question is asked again after a pause
        if self.steering.cancelled:
            return self.result(RunStatus.CANCELLED, self.steering.cancel_reason or "cancelled")
        if self.steering.paused:
            return None
        return self.result(RunStatus.TIMED_OUT, f"no result within {self.config.budget_s:g} s")

    async def _chat(self, messages: list[dict[str, Any]], model: Model | None = None) -> ModelReply | None:
        """The model's reply (``model``: the grounder; else the model), waiting out a failing server
        within the outage budget; None when a cancel or pause came first, or the run's budget ran out."""
        while True:
            asked = model or self.model
            call = asyncio.ensure_future(asked.chat(messages, on_retry=self._model_retrying))
            if not await self._unless_interrupted(call):
                return None
            try:
                reply = call.result()
            except ModelError as exc:
                pause = self._outage_pause(exc)
                if pause is None:
                    raise
                logger.warning(
                    "model server still failing; the run waits %.1f s for it: %s", pause, exc.message
                )
                self.model_failing = True
                await self.hooks.on_model_unavailable(exc.message, self._outage_until())
                if not await self._unless_interrupted(asyncio.ensure_future(asyncio.sleep(pause))):
                    return None
                continue
            self._outage_ends()
            if self.model_failing:
                self.model_failing = False
                await self.hooks.on_model_unavailable(None)
            return reply

    async def _unless_interrupted(self, job: asyncio.Future[Any]) -> bool:
        """Whether ``job`` finished before a cancel, a pause or the end of the run's budget (it is
        cancelled then)."""
        interrupt = asyncio.ensure_future(self.steering.wait_interrupt())
        try:
            done, _ = await asyncio.wait(
                {job, interrupt}, timeout=max(0.0, self.remaining()), return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            interrupt.cancel()
            if not job.done():
                job.cancel()
                with contextlib.suppress(asyncio.CancelledError, ModelError):
                    await job
        return job in done

    async def _model_retrying(self, failure: str) -> None:
        self._outage_begins()
        self.model_failing = True
        await self.hooks.on_model_unavailable(failure, self._outage_until())

    def _outage_begins(self) -> None:
        if self.outage_since is None:
            self.outage_since = time.monotonic()

    def _outage_ends(self) -> None:
        if self.outage_since is not None:
            self.outage_spent_s += time.monotonic() - self.outage_since
            self.outage_since, self.outage_pauses = None, 0

    def _outage_spent(self) -> float:
        """Seconds the model server has failed in this run, the outage in progress included."""
        current = 0.0 if self.outage_since is None else time.monotonic() - self.outage_since
        return self.outage_spent_s + current

    def _outage_until(self) -> dt.datetime | None:
        """When the outage budget runs out if the server keeps failing (None without a budget)."""
        budget = self.config.model_outage_budget_s
        if budget <= 0:
            return None
        left = max(0.0, budget - self._outage_spent())
        return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=left)

    def _outage_pause(self, error: ModelError) -> float | None:
        """How long to wait before calling the model again after ``error``; None: the run ends."""
        if not error.retryable or self.config.model_outage_budget_s <= 0:
            return None
        self._outage_begins()
        left = self.config.model_outage_budget_s - self._outage_spent()
        if left <= 0:
            return None
        cfg = self.config
        backoff = min(
            cfg.model_outage_backoff_s * 2.0 ** min(self.outage_pauses, 32), cfg.model_outage_backoff_max_s
        )
        self.outage_pauses += 1
        return max(0.0, min(backoff, left))

    async def step(self) -> AgentResult | None:
        index = len(self.steps) + 1
        timings = StepTimings()
        image, app = await self._capture(timings)
        if self.app_policy is not None:
            left = await self._left_allowed_apps(index, image, app, timings)
            if left is not False:
                return left
        reply = await self._ask_model(image, app, timings)
        if reply is None or isinstance(reply, AgentResult):
            return reply
        timings.time_to_first_token_s = reply.time_to_first_token_s

        redactions, typed_unseen = self.redactions, self.executor.focused_password

        def record(
            thinking: str, action_text: str, action: a.Action | None, result: str, note: str | None = None
        ) -> StepRecord:
            dumped = action.model_dump(mode="json") if action is not None else None
            if action is not None and a.types_text(action) and typed_unseen:
                # Typed into a password field: the step keeps the action, not the text.
                dumped = {**(dumped or {}), "text": REDACTED}
                action_text = format_action(action.model_copy(update={"text": REDACTED}))
            step = StepRecord(
                index=index, screenshot=image, current_app=app, thinking=thinking, action_text=action_text,
                action=dumped, result=result, timings=timings, prompt_tokens=reply.prompt_tokens,
                completion_tokens=reply.completion_tokens, note=note, redactions=redactions,
                replies=self.replies,
            )  # fmt: skip
            if self.steps and self.steps[-1].index == index:
                self.steps[-1] = step  # recorded when it asked a person; now with its end
            else:
                self.steps.append(step)
            return step

        try:
            if self.grounder_family is None:
                parsed = self.family.parse(reply.content, self.sent_size)
            else:
                grounded = await self._ground(planner.read_plan(reply.content), image, app, timings)
                if grounded is None or isinstance(grounded, AgentResult):
                    return grounded
                parsed = grounded
        except ActionError as exc:
            self.parse_errors += 1
            self.conversation.add_assistant(reply.content)
            self.pending_notes.append(exc.agent_feedback)
            await self.hooks.on_step(record("", reply.content, None, f"parse error: {exc.message}"))
            if self.parse_errors >= self.config.max_parse_errors:
                return self.result(
                    RunStatus.FAILED,
                    f"{self.parse_errors} replies in a row held no valid action",
                    FailReason.PARSE_ERRORS,
                )
            return None
        self.parse_errors = 0
        action = parsed.action
        # The action as people read it (questions, notes): typed into a password field, its text masked.
        shown = action.model_copy(update={"text": REDACTED}) if a.types_text(action) and typed_unseen else action
        # A pair's planner hears its own words back (its targets, not the grounder's points).
        kept = (
            reply.content
            if self.grounder_family is not None
            else self.family.assistant_turn(parsed, self.sent_size)
        )
        self.conversation.add_assistant(kept)

        def step_of(result: str, note: str | None = None) -> StepRecord:
            return record(parsed.thinking, parsed.action_text, action, result, note)

        screen = _screen_key(image)
        try:
            if isinstance(action, a.Finish) and action.cannot and self.config.on_stuck == "ask":
                question = f"I can't do this by myself: {action.message}; please do it or tell me how."
                return await self._ask_for_help(question, "cannot", step_of, FailReason.NEEDS_USER)
            if not isinstance(action, (a.Finish, a.TakeOver, a.Interact)):  # already ending or asking
                self.history.append((screen, parsed.action_text))
                self.tried.append(_describe(shown))
                loop = self._loop_found()
                if loop is not None:
                    why, tried = loop
                    if self.config.on_stuck == "fail":
                        await self.hooks.on_step(step_of("stuck"))
                        return self.result(RunStatus.FAILED, f"stuck: {why}", FailReason.STUCK)
                    where = app or "this screen"
                    question = (
                        f"I'm stuck on {where}: I tried {', '.join(dict.fromkeys(tried))} ({why}); "
                        "please do it or tell me how."
                    )
                    return await self._ask_for_help(question, "stuck", step_of, FailReason.STUCK)

            async def asking(message: str) -> None:
                await self.hooks.on_step(step_of(WAITING, message))

            self.executor.on_asking = asking  # the step that asks a person is recorded when it asks
            refused = self._refused_launch(action)
            if refused is not None:
                self.pending_notes.append(refused)
                self.no_change.append(_describe(action))
                await self.hooks.on_step(step_of(REFUSED))
                return None
            t0 = time.monotonic()
            try:
                outcome = await self.executor.execute(action)
            except ActionError as exc:
                timings.act_s = time.monotonic() - t0
                self.pending_notes.append(exc.agent_feedback)
                self.no_change.append(_describe(shown))
                await self.hooks.on_step(step_of(f"rejected: {exc.message}"))
                return None
        except NoAnswer as exc:
            await self.hooks.on_step(step_of("no answer", exc.message))
            raise
        timings.act_s = time.monotonic() - t0
        self.acted = self.acted or type(action).acts_on_phone
        if outcome.note:
            self.pending_notes.append(outcome.note)
        if isinstance(action, (a.TakeOver, a.Interact)) or a.is_sensitive(action):
            self._fresh_start()  # a person had their say
        if not (outcome.finished or outcome.stop) and action.changes_screen:
            t0 = time.monotonic()
            launch = isinstance(action, a.Launch)
            settled = await self.device.wait_for_settle(
                timeout=self.config.settle_timeout_s,
                interval=self.config.launch_settle_interval_s if launch else self.config.settle_interval_s,
                stable_frames=2 if launch else self.config.settle_frames,
            )
            self.next_frame = settled.image
            timings.settle_s = time.monotonic() - t0
            # A secure window captures black before and after whatever was done on it: no sign of change.
            if type(action).acts_on_phone and not is_secure_frame(image):
                if _screen_key(settled.image) == screen:
                    self.no_change.append(_describe(shown))
                else:
                    self.no_change.clear()
        note = outcome.step_note if outcome.step_note is not None else outcome.note
        await self.hooks.on_step(step_of("ok", note))
        if outcome.finished:
            return self.result(RunStatus.SUCCEEDED, outcome.message)
        if outcome.stop is not None:
            return self.result(RunStatus.FAILED, outcome.message, outcome.stop)
        return None

    async def _screen_in_words(self) -> str:
        """What a planner that reads no images is told of the screen: its elements' labels, from the
        view tree, in document order (the grounder still sees the screenshot)."""
        try:
            tree = self.step_ui_xml if self.step_ui_xml is not None else await self.device.ui_dump()
            labels = [e.label for e in ui_elements(tree) if e.label]
        except DeviceError:
            logger.warning("the view tree could not be read for a planner without vision", exc_info=True)
            return "The screen's elements could not be read."
        shown = "; ".join(json.dumps(label, ensure_ascii=False) for label in dict.fromkeys(labels))
        return f"The screen shows: {shown or '(no labelled elements)'}."

    async def _ground(
        self, plan: planner.Plan, image: Image.Image, app: str, timings: StepTimings
    ) -> ParsedReply | AgentResult | None:
        """The planner's action with each target in words replaced by the point the grounder finds
        for it on ``image`` (one request each, in the grounder family's shape). None when paused
        mid-call (the step is asked again), an AgentResult when the run must end; ActionError
        (told to the planner) when the grounder's reply holds no point."""
        assert self.grounder is not None and self.grounder_family is not None and self.replies is not None
        points: dict[str, tuple[int, int]] = {}
        if plan.targets:
            prepared = self.grounder_family.prepare_image(image, self.config.image_max_pixels)
            encoded = await self.grounder.encode_image(prepared)
            size = (encoded.width, encoded.height)
            timings.grounder_s = 0.0
        for field_name, target in plan.targets.items():
            task = planner.ground_task(target)
            asking = Conversation(
                self.grounder_family.prompt(self.config.lang, self.today, size), self.config.history_tokens
            )
            asking.add_user(self.grounder_family.first_user_text(task, prompts.screen_info(app), None))
            t0 = time.monotonic()
            answer = await self._chat(
                self.grounder_family.messages(asking, task, image_part(encoded)), self.grounder
            )
            spent = time.monotonic() - t0
            timings.grounder_s = (timings.grounder_s or 0.0) + spent
            timings.model_s += spent
            if answer is None:
                return self._no_reply()  # the planner is asked again after a pause
            self.replies.append({
                "role": "grounder", "target": target, "reply": answer.content, "model_s": round(spent, 4),
                "prompt_tokens": answer.prompt_tokens, "completion_tokens": answer.completion_tokens,
            })  # fmt: skip
            points[field_name] = planner.point_of(
                self.grounder_family.parse(answer.content, size).action, target
            )
        action = plan.action.model_copy(update=points)
        return ParsedReply(thinking=plan.thinking, action=action, action_text=format_action(action))

    def _refused_launch(self, action: a.ActionModel) -> str | None:
        """What the model is told when ``action`` launches an app outside the allowed ones; None when
        it may go ahead (not a Launch, no policy, an allowed app, or a name no package is known for:
        the check after the action catches where that leads)."""
        if self.app_policy is None or not isinstance(action, a.Launch):
            return None
        name = action.app.strip()
        package = name.split("/", 1)[0] if "/" in name else self.apps.resolve(name)
        if package is None or self.app_policy.allows(package):
            return None
        return (
            f'The app "{name}" ({package}) was not opened: it is not among the apps this task may use '
            f"({self.app_policy.listed()}). Do the task with those apps, or finish saying why you cannot."
        )

    async def _left_allowed_apps(
        self, index: int, image: Image.Image, app: str, timings: StepTimings
    ) -> AgentResult | bool | None:
        """After an action, the app in front outside the allowed ones: a question to a person (once
        per excursion). False: nothing to ask, the step goes on; else the step's outcome."""
        assert self.app_policy is not None
        package, acted = self.foreground, self.acted
        self.acted = False
        if self.app_policy.allows(package):
            self.excursion = None
            return False
        if not acted or self.excursion == package:
            return False
        self.excursion = package
        question = (
            f"The phone left the apps this task may use: {app} ({package}) is open now, not by a Launch "
            f"(a link, a notification or an icon led there). Allowed: {self.app_policy.listed()}. "
            "Shall I go on, or take over and bring it back?"
        )

        def step_of(result: str, note: str | None = None) -> StepRecord:
            step = StepRecord(
                index=index, screenshot=image, current_app=app, thinking="", action_text="", action=None,
                result=result, timings=timings, note=note,
            )  # fmt: skip
            if self.steps and self.steps[-1].index == index:
                self.steps[-1] = step
            else:
                self.steps.append(step)
            return step

        return await self._ask_for_help(
            question, "left allowed_apps", step_of, FailReason.NEEDS_USER, carried_out=True
        )

    def _fresh_start(self) -> None:
        """Forget the loop rules' history: a person stepped in, what came before is no loop."""
        self.history.clear()
        self.tried.clear()
        self.no_change.clear()

    def _loop_found(self) -> tuple[str, list[str]] | None:
        """Why the run goes round in a loop, and the actions it tried; None while it does not."""
        cfg, history = self.config, self.history
        n = cfg.stuck_repeats
        if n > 0 and len(history) >= n and len(set(history[-n:])) == 1:
            return f"the same action on the same screen {n} times", self.tried[-1:]
        r = cfg.stuck_cycle_repeats
        for p in range(2, cfg.stuck_cycle_max + 1):
            # The last p pairs, and the p before them (and so on r times), are the same sequence.
            long_enough = r >= 2 and len(history) >= p * r
            if long_enough and len(set(history[-p:])) > 1 and history[-p * r :] == history[-p:] * r:
                return f"a loop of {p} actions on the same screens {r} times over", self.tried[-p:]
        m = cfg.stuck_no_change
        if m > 0 and len(self.no_change) >= m:
            return f"{len(self.no_change)} actions in a row changed nothing on screen", self.no_change[-m:]
        return None

    async def _ask_for_help(
        self,
        question: str,
        result: str,
        step_of: Callable[[str, str | None], StepRecord],
        unanswered: FailReason,
        *,
        carried_out: bool = False,
    ) -> AgentResult | None:
        """Ask a person ``question`` instead of carrying out the step's action (a loop, or a finish
        saying the task cannot be done): their answer goes into the next turn; a takeover carries on
        at hand-back; nobody to ask ends the run with ``unanswered``."""
        await self.hooks.on_step(step_of(WAITING, question))  # shown before the task says it waits
        await self.hooks.on_state(AgentState.ASKING_USER, question)
        answer = await self.hooks.ask_user(question)
        self._fresh_start()
        if self.steering.cancelled:
            await self.hooks.on_step(step_of(f"{result}: cancelled while asking", question))
            return self.result(RunStatus.CANCELLED, self.steering.cancel_reason or "cancelled")
        if answer is None and not self.steering.paused:
            await self.hooks.on_step(step_of(f"{result}: nobody to ask", question))
            what = "stuck" if unanswered == FailReason.STUCK else "needs a person"
            return self.result(RunStatus.FAILED, f"{what}: {question}", unanswered)
        await self.hooks.on_state(AgentState.RUNNING)
        if answer is None:
            note = "The user took control instead of answering."
        else:
            note = f"The user answered: {answer}"
            if carried_out:  # the question was the run's own, about where the phone is
                self.pending_notes.append(f"The user was asked: {question} {note}")
            else:
                self.pending_notes.append(
                    f"Your last action was not carried out: you asked the user for help ({question}). {note}"
                )
        self.next_frame = None
        await self.hooks.on_step(step_of(f"{result}: asked the user", note))
        return None


async def run_agent(
    task: str,
    device: PhoneDevice,
    model: Model,
    *,
    config: AgentConfig | None = None,
    hooks: AgentHooks | None = None,
    steering: AgentSteering | None = None,
    apps: AppCatalog | None = None,
    today: dt.date | None = None,
    earlier_tries: str | None = None,
    app_policy: AppPolicy | None = None,
    grounder: Model | None = None,
) -> AgentResult:
    """Run ``task`` on ``device`` until finish, failure, cancel or a budget runs out.

    ``earlier_tries`` (``prompts.earlier_tries_message``) goes with the task in the first turn: a
    later try of the same task, starting from the screen the earlier one left. ``app_policy``
    holds the run to the apps a task may use (``app_policy.py``); None: any app. ``grounder``: a
    planner/grounder pair's grounder (``model`` is then the planner; ``config.grounder_family``).
    """
    loop = _AgentLoop(
        task, device, model, config or AgentConfig(), hooks or AgentHooks(), steering or AgentSteering(),
        apps or AppCatalog(), today or dt.date.today(), earlier_tries, app_policy, grounder,
    )  # fmt: skip
    return await loop.run()


def _grid_centre(bounds: Sequence[int], size: tuple[int, int]) -> tuple[int, int]:
    """The centre of a region given in screen pixels ``[left, top, right, bottom]``, on the grid."""
    return to_grid((bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2, "pixels", size)
