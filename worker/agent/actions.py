"""The actions of the AutoGLM phone grammar, each declared once: model, prompt lines, handler.

The model writes ``do(action="Tap", element=[x, y])`` or ``finish(message="…")``; the parser turns
that into one of the pydantic models below. Each model carries what the system prompt says about it
(``usage`` and ``purpose``, per language) and how it is carried out (``execute``, given the
``ActionExecutor``). ``@in_grammar`` registers it in ``ACTIONS`` (``grammar.py``), in the order
the prompt lists them, and ``Action`` (the union the parser validates against) is made from that
table, so a new action is one class here. Points are on the grid: 0..GRID_SIZE-1 over the
screenshot on both axes, (0, 0) at the top-left, whatever the phone's resolution.
"""

from __future__ import annotations

import functools
import math
import operator
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import Field, field_validator

from device_pool.driver import UnknownApp
from device_pool.grid import GRID_SIZE
from worker.agent.errors import ActionRejected
from worker.agent.grammar import ACTIONS, ActionModel, Purpose, in_grammar, parse_duration
from worker.agent.results import Outcome

if TYPE_CHECKING:
    from worker.agent.executor import ActionExecutor


Coord = Annotated[int, Field(ge=0, le=GRID_SIZE - 1)]
Point = tuple[Coord, Coord]


@in_grammar
class Launch(ActionModel):
    name: Literal["Launch"] = "Launch"
    app: str = Field(min_length=1)
    usage: ClassVar[str] = 'do(action="Launch", app="xxx")'
    purpose: ClassVar[Purpose] = Purpose(
        zh="直接打开名为 xxx 的应用，比回到桌面找图标更快。",
        en="Open the app named xxx directly; faster than looking for its icon on the home screen.",
    )

    async def execute(self, ctx: ActionExecutor) -> Outcome:
        try:
            await ctx.device.launch(self.app)
        except UnknownApp as exc:
            raise ActionRejected(
                f"unknown app {self.app!r}",
                agent_feedback=f'The app "{self.app}" is not installed. Find it on the home screen or choose another way.',
            ) from exc
        return Outcome()


@in_grammar
class Tap(ActionModel):
    """A tap; a ``message`` marks it sensitive (payment, sending, privacy) and asks for confirmation."""

    name: Literal["Tap"] = "Tap"
    element: Point
    message: str | None = None
    usage: ClassVar[str] = 'do(action="Tap", element=[x,y])'
    purpose: ClassVar[Purpose] = Purpose(
        zh="点击屏幕上的一个点：按按钮、选条目、打开图标等。x、y 是 0 到 999 的整数，"
        "左上角为 (0,0)，右下角为 (999,999)。",
        en="Tap one point of the screen: press a button, pick an item, open an icon. x and y are "
        "integers from 0 to 999, with (0,0) at the top-left and (999,999) at the bottom-right.",
    )
    # A sensitive tap is the same Tap with one more argument; the prompt shows it as its own line.
    forms: ClassVar[tuple[tuple[str, Purpose], ...]] = (
        (
            'do(action="Tap", element=[x,y], message="…")',
            Purpose(
                zh="点击会付款、转账、下单、发送、删除或涉及隐私的按钮时使用：message 写明这一步要做什么，"
                "系统会先请用户确认再点击。",
                en="Use this form for a button that pays, transfers money, places an order, sends, "
                "deletes or shares private data: message says what the tap will do, and the user confirms first.",
            ),
        ),
    )

    async def execute(self, ctx: ActionExecutor) -> Outcome:
        if is_sensitive(self):
            return await ctx.sensitive_tap(self, self.message or "sensitive action")
        await ctx.device.tap(*ctx.px(self.element))
        return Outcome()


@in_grammar
class TypeText(ActionModel):
    name: Literal["Type"] = "Type"
    text: str
    usage: ClassVar[str] = 'do(action="Type", text="xxx")'
    purpose: ClassVar[Purpose] = Purpose(
        zh="在已获得焦点的输入框中输入文字，使用前先点中输入框。框内原有的文字会先被自动清空，"
        "无需手动删除。屏幕上不一定会出现键盘，输入框高亮即可输入。",
        en="Enter text into the focused input field; tap the field first. Whatever the field holds "
        "is cleared before typing, so never delete it by hand. A keyboard may not show on screen; a "
        "highlighted field is enough.",
    )

    async def execute(self, ctx: ActionExecutor) -> Outcome:
        await ctx.type_text(self.text)
        return Outcome()


@in_grammar
class TypeName(ActionModel):
    """Typing a person's name; handled as Type, told apart so the model can say what it types."""

    name: Literal["Type_Name"] = "Type_Name"
    text: str
    usage: ClassVar[str] = 'do(action="Type_Name", text="xxx")'
    purpose: ClassVar[Purpose] = Purpose(
        zh="输入人名，用法与 Type 相同。", en="Enter a person's name; works like Type."
    )

    async def execute(self, ctx: ActionExecutor) -> Outcome:
        await ctx.type_text(self.text)
        return Outcome()


@in_grammar
class TypeSecret(ActionModel):
    """Typing a secret of the task's tenant (the vault) by its name: the worker types the value;
    the model, the steps and the logs only ever see the name (docs/security.md, "Secrets vault")."""

    name: Literal["Type_Secret"] = "Type_Secret"
    secret: str = Field(min_length=1, max_length=64)
    grammar_args: ClassVar[dict[str, str]] = {"name": "secret"}
    usage: ClassVar[str] = 'do(action="Type_Secret", name="xxx")'
    purpose: ClassVar[Purpose] = Purpose(
        zh="在已获得焦点的输入框中输入名为 xxx 的机密（如密码），先点中输入框。只能使用任务里列出的机密名称；"
        "你看不到机密的内容，系统会替你输入。",
        en="Enter the secret named xxx (such as a password) into the focused field; tap the field "
        "first. Use only the secret names the task lists; you never see the value, the system types it.",
    )

    async def execute(self, ctx: ActionExecutor) -> Outcome:
        await ctx.type_secret(self.secret)
        return Outcome()


@in_grammar
class Swipe(ActionModel):
    name: Literal["Swipe"] = "Swipe"
    start: Point
    end: Point
    usage: ClassVar[str] = 'do(action="Swipe", start=[x1,y1], end=[x2,y2])'
    purpose: ClassVar[Purpose] = Purpose(
        zh="从 start 滑动到 end：滚动列表、翻页、拉下通知栏等。坐标规则与 Tap 相同。",
        en="Drag from start to end: scroll a list, turn a page, pull down the notification shade. "
        "Points as for Tap.",
    )

    async def execute(self, ctx: ActionExecutor) -> Outcome:
        (x1, y1), (x2, y2) = ctx.px(self.start), ctx.px(self.end)
        await ctx.device.swipe(x1, y1, x2, y2, duration_ms=ctx.swipe_ms)
        return Outcome()


@in_grammar
class LongPress(ActionModel):
    name: Literal["Long Press"] = "Long Press"
    element: Point
    usage: ClassVar[str] = 'do(action="Long Press", element=[x,y])'
    purpose: ClassVar[Purpose] = Purpose(
        zh="在一个点上长按：唤出菜单、选中文字等。",
        en="Press and hold one point: open a context menu, select text.",
    )

    async def execute(self, ctx: ActionExecutor) -> Outcome:
        await ctx.device.long_press(*ctx.px(self.element), duration_ms=ctx.long_press_ms)
        return Outcome()


@in_grammar
class DoubleTap(ActionModel):
    name: Literal["Double Tap"] = "Double Tap"
    element: Point
    usage: ClassVar[str] = 'do(action="Double Tap", element=[x,y])'
    purpose: ClassVar[Purpose] = Purpose(
        zh="在一个点上快速点两下：放大、选中等。", en="Tap one point twice quickly: zoom, select."
    )

    async def execute(self, ctx: ActionExecutor) -> Outcome:
        await ctx.device.double_tap(*ctx.px(self.element))
        return Outcome()


@in_grammar
class Back(ActionModel):
    name: Literal["Back"] = "Back"
    usage: ClassVar[str] = 'do(action="Back")'
    purpose: ClassVar[Purpose] = Purpose(
        zh="返回上一页或关掉弹窗，等同于安卓的返回键。",
        en="Go to the previous screen or close a dialog, like Android's back key.",
    )

    async def execute(self, ctx: ActionExecutor) -> Outcome:
        await ctx.device.key("back")
        return Outcome()


@in_grammar
class Home(ActionModel):
    name: Literal["Home"] = "Home"
    usage: ClassVar[str] = 'do(action="Home")'
    purpose: ClassVar[Purpose] = Purpose(zh="回到系统桌面。", en="Go to the home screen.")

    async def execute(self, ctx: ActionExecutor) -> Outcome:
        await ctx.device.key("home")
        return Outcome()


@in_grammar
class Wait(ActionModel):
    name: Literal["Wait"] = "Wait"
    duration: str
    usage: ClassVar[str] = 'do(action="Wait", duration="x seconds")'
    purpose: ClassVar[Purpose] = Purpose(
        zh="页面还在加载时等待 x 秒。", en="Wait x seconds for a page that is still loading."
    )
    acts_on_phone: ClassVar[bool] = False

    @field_validator("duration", mode="before")
    @classmethod
    def _number_means_seconds(cls, value: Any) -> Any:
        # Models sometimes write duration=2; keep the grammar's string form so formatting round-trips.
        if isinstance(value, bool):
            return value
        if isinstance(value, int):
            return f"{value} seconds"
        if isinstance(value, float):
            if not math.isfinite(value):
                raise ValueError("duration must be a finite number of seconds")
            return f"{value:g} seconds"
        return value

    @field_validator("duration")
    @classmethod
    def _readable(cls, value: str) -> str:
        parse_duration(value)
        return value

    @property
    def seconds(self) -> float:
        """The duration in seconds."""
        return parse_duration(self.duration)

    async def execute(self, ctx: ActionExecutor) -> Outcome:
        await ctx.wait(self.seconds)
        return Outcome()


@in_grammar
class TakeOver(ActionModel):
    """The user must act (login, captcha, verification); the task waits for them."""

    name: Literal["Take_over"] = "Take_over"
    message: str
    usage: ClassVar[str] = 'do(action="Take_over", message="xxx")'
    purpose: ClassVar[Purpose] = Purpose(
        zh="登录、验证码、人脸或短信验证等必须由用户本人完成的步骤，交给用户处理；"
        "message 写清需要用户做什么。",
        en="Hand the phone to the user for a step only they can do: logging in, a captcha, a "
        "face or SMS check. message tells them what to do.",
    )
    acts_on_phone: ClassVar[bool] = False  # a person acts: a sensitive step of its own

    async def execute(self, ctx: ActionExecutor) -> Outcome:
        return await ctx.takeover(self.message)


@in_grammar
class Interact(ActionModel):
    """Several options fit the task and the model asks the user which one to take."""

    name: Literal["Interact"] = "Interact"
    message: str | None = None
    usage: ClassVar[str] = 'do(action="Interact")'
    purpose: ClassVar[Purpose] = Purpose(
        zh="有几个选项都符合要求、无法替用户决定时，询问用户选哪一个；可加 message 写出问题。",
        en="Several options fit and you cannot choose for the user: ask which one; message may "
        "hold the question.",
    )
    changes_screen: ClassVar[bool] = False
    acts_on_phone: ClassVar[bool] = False

    async def execute(self, ctx: ActionExecutor) -> Outcome:
        return await ctx.ask(self.message or "Please choose how to continue.")


@in_grammar
class Note(ActionModel):
    """Remember what the current screen shows, for a later summary."""

    name: Literal["Note"] = "Note"
    message: str
    usage: ClassVar[str] = 'do(action="Note", message="True")'
    purpose: ClassVar[Purpose] = Purpose(
        zh="记下当前页面上的内容，留作之后汇总。",
        en="Remember what the current screen shows, for a summary later.",
    )
    changes_screen: ClassVar[bool] = False
    acts_on_phone: ClassVar[bool] = False

    async def execute(self, ctx: ActionExecutor) -> Outcome:
        return Outcome(step_note=self.message)


@in_grammar
class CallApi(ActionModel):
    """Summarise or comment on the current screen or on what was noted."""

    name: Literal["Call_API"] = "Call_API"
    instruction: str
    usage: ClassVar[str] = 'do(action="Call_API", instruction="xxx")'
    purpose: ClassVar[Purpose] = Purpose(
        zh="按 instruction 的要求总结或评论当前页面或已记下的内容。",
        en="Summarise or comment on the current screen or on what you noted, as instruction says.",
    )
    changes_screen: ClassVar[bool] = False
    acts_on_phone: ClassVar[bool] = False

    async def execute(self, ctx: ActionExecutor) -> Outcome:
        return Outcome(step_note=self.instruction)


@in_grammar
class Finish(ActionModel):
    """The task is over; ``message`` says what was done or why it could not be."""

    name: Literal["finish"] = "finish"
    message: str
    usage: ClassVar[str] = 'finish(message="xxx")'
    purpose: ClassVar[Purpose] = Purpose(
        zh="任务已完成时结束任务，message 写明结果。确实无法完成时，message 以“无法”开头并写明原因，"
        "系统会请用户帮忙。",
        en="End the task when it is done; message gives the result. When it truly cannot be done, "
        'begin message with "Cannot" and give the reason: the user is then asked for help.',
    )
    changes_screen: ClassVar[bool] = False
    acts_on_phone: ClassVar[bool] = False

    @property
    def cannot(self) -> bool:
        """Whether the model ends by saying it cannot do the task (docs/agent.md, "Asking instead of
        looping"): its message begins with one of ``CANNOT_PREFIXES``. An explicit rule, so a
        finish that merely mentions a failure ("the unread messages failed to load, there are 3")
        is a result, not a refusal."""
        text = self.message.strip().lower().replace("\u2019", "'")
        return text.startswith(CANNOT_PREFIXES)

    async def execute(self, ctx: ActionExecutor) -> Outcome:
        return Outcome(finished=True, message=self.message)


# How a finish's message begins when the model says it cannot do the task (Finish.cannot).
CANNOT_PREFIXES = (
    "cannot", "can't", "can not", "unable", "could not", "couldn't",
    "i cannot", "i can't", "i can not", "i am unable", "i'm unable", "i was unable", "i could not",
    "i couldn't", "the task cannot", "task cannot", "failed to", "i failed to",
    "无法", "不能", "未能", "我无法", "我不能", "没能", "我没能",
)  # fmt: skip


# The union the parser validates against, made from the table: every registered action, by name.
Action = Annotated[functools.reduce(operator.or_, ACTIONS.values()), Field(discriminator="name")]

FINISH = "finish"

# The names of the actions that change something on the phone (``acts_on_phone``).
ACTING = frozenset(name for name, cls in ACTIONS.items() if cls.acts_on_phone)


def is_terminal(action: ActionModel) -> bool:
    """Whether the action ends the task."""
    return isinstance(action, Finish)


def types_text(action: ActionModel) -> bool:
    """Whether the action types text the model wrote (so it is masked when the field is a password)."""
    return isinstance(action, (TypeText, TypeName))


def is_sensitive(action: ActionModel) -> bool:
    """Whether the action is a tap the model marked sensitive, so a user must confirm it first."""
    return isinstance(action, Tap) and action.message is not None


__all__ = [
    "ACTING",
    "ACTIONS",
    "CANNOT_PREFIXES",
    "FINISH",
    "GRID_SIZE",
    "Action",
    "ActionModel",
    "Point",
    "Purpose",
    "in_grammar",
    "is_sensitive",
    "is_terminal",
    "parse_duration",
    "types_text",
    *(cls.__name__ for cls in ACTIONS.values()),
]
