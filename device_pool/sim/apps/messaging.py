"""Messages (com.android.messaging): conversations, a conversation with its bubbles, and compose.

Sending writes an SMS with type 2 (sent) to the telephony store, so `content query --uri
content://sms/sent` and ``phone.sms("sent")`` see it.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, unquote

from device_pool.sim import render
from device_pool.sim import views as v
from device_pool.sim.apps import widgets as w
from device_pool.sim.apps.base import App, Ctx, Screen
from device_pool.sim.apps.contacts import avatar_color
from device_pool.sim.views import View

PKG = "com.android.messaging"
LIST = f"{PKG}.ui.conversationlist.ConversationListActivity"
CONVERSATION = f"{PKG}.ui.conversation.ConversationActivity"


def parse_sms_uri(data: str | None) -> tuple[str, str]:
    """("+1555...", "prefilled body") from sms:/smsto:/mms: URIs; empty strings when absent."""
    if not data or ":" not in data:
        return "", ""
    rest = data.split(":", 1)[1].lstrip("/")
    address, _, query = rest.partition("?")
    body = parse_qs(query).get("body", [""])[0] if query else ""
    return unquote(address).split(",")[0].strip(), body


class MessagingApp(App):
    package = PKG
    label_en, label_zh = "Messages", "信息"
    icon_letter, icon_color = "M", (52, 168, 83)
    activities = {LIST: "list", CONVERSATION: "conversation"}  # noqa: RUF012

    def create_screen(self, activity: str, data: str | None) -> Screen:
        screen = Screen(name=self.activities[activity], activity=activity)
        if screen.name == "conversation":
            address, body = parse_sms_uri(data)
            screen.args["address"] = address
            screen.fields["body"] = body
            screen.focus = "body" if address else "to"
            if address:
                self.host.state.mark_read(address)
        return screen

    def _name(self, address: str) -> str:
        return self.host.state.contact_name(address) or address

    def build_list(self, ctx: Ctx) -> View:
        root = w.page(ctx)
        bar, y = w.app_bar(ctx, ctx.t("Messages", "信息"), back=False)
        root.add(bar)
        latest: dict[str, dict[str, str]] = {}
        unread: set[str] = set()
        for m in self.host.state.sms():  # newest first
            latest.setdefault(m["address"], m)
            if m["read"] == "0":
                unread.add(m["address"])
        rows = []
        for address, m in latest.items():
            name = self._name(address)
            body = (ctx.t("You: ", "我：") if m["type"] == "2" else "") + m["body"]
            rows.append((ctx.dp(w.ROW_H + 8), lambda t, b, a=address, n=name, s=body: self._row(ctx, t, b, a, n, s,
                                                                                        a in unread)))  # fmt: skip
        if not rows:
            root.add(w.label(ctx, (0, y + ctx.dp(40), ctx.width, y + ctx.dp(90)),
                             ctx.t("No conversations", "没有对话"), align="center", color=w.SUBTLE))  # fmt: skip
        root.add(
            w.scroll_list(ctx, "conversations", (0, y, ctx.width, ctx.height), rows, rid=f"{PKG}:id/list")
        )
        root.add(
            w.fab(
                ctx,
                ctx.t("Start chat", "发起聊天"),
                self.compose,
                rid=f"{PKG}:id/start_new_conversation_button",
            )
        )
        return root

    def _row(
        self, ctx: Ctx, top: int, bottom: int, address: str, name: str, snippet: str, unread: bool
    ) -> View:
        row = w.list_row(ctx, top, bottom, name, snippet, avatar=name[:1].upper(), avatar_color=avatar_color(name),
                         rid=f"{PKG}:id/swipeableContent", title_rid=f"{PKG}:id/conversation_name",
                         on_click=lambda: self.open(address))  # fmt: skip
        if unread:
            row.children[1].bold = True
        return row

    def open(self, address: str) -> None:
        self.host.state.mark_read(address)
        screen = self.push("conversation", CONVERSATION, address=address)
        screen.focus = "body"

    def compose(self) -> None:
        self.push("conversation", CONVERSATION, address="").focus = "to"

    def build_conversation(self, ctx: Ctx) -> View:
        screen = ctx.screen
        address = screen.args.get("address", "")
        root = w.page(ctx)
        bar, y = w.app_bar(ctx, self._name(address) if address else ctx.t("New conversation", "新对话"))
        root.add(bar)
        m = ctx.dp(12)
        if not address:
            root.add(w.label(ctx, (ctx.dp(20), y, ctx.dp(64), y + ctx.dp(56)), ctx.t("To", "收件人"), size=17,
                             color=w.SUBTLE))  # fmt: skip
            root.add(w.edit(ctx, (ctx.dp(64), y, ctx.width - m, y + ctx.dp(56)), "to",
                            ctx.t("Type name or phone number", "输入姓名或电话号码"),
                            rid=f"{PKG}:id/recipient_text_view"))  # fmt: skip
            y += ctx.dp(64)
            y = self._suggestions(ctx, root, screen.fields.get("to", ""), y)
        # Compose bar at the bottom: the body field and Send.
        ch = ctx.dp(56)
        cb = ctx.height - ctx.dp(16)
        send_w = ctx.dp(88)
        root.add(w.edit(ctx, (m, cb - ch, ctx.width - m * 2 - send_w, cb), "body", ctx.t("Text message", "短信"),
                        rid=f"{PKG}:id/compose_message_text", boxed=True))  # fmt: skip
        root.add(w.button(ctx, (ctx.width - m - send_w, cb - ch, ctx.width - m, cb), ctx.t("Send", "发送"), self.send,
                          rid=f"{PKG}:id/send_message_button", desc=ctx.t("Send SMS", "发送短信")))  # fmt: skip
        if address:
            root.add(self._bubbles(ctx, address, y, cb - ch - ctx.dp(12)))
        return root

    def _bubbles(self, ctx: Ctx, address: str, top: int, bottom: int) -> View:
        """The newest messages that fit, bottom-aligned, sent on the right."""
        box = View(v.RECYCLER, (0, top, ctx.width, bottom), rid=f"{PKG}:id/message_list")
        px, pad, max_w = ctx.dp(17), ctx.dp(12), int(ctx.width * 0.72)
        msgs = [m for m in self.host.state.sms() if m["address"] == address]  # newest first
        y = bottom
        placed: list[View] = []
        for msg in msgs:
            lines = render.wrap_lines(msg["body"], px, max_w - 2 * pad)
            h = render.line_height(px) * len(lines) + 2 * pad
            if y - h < top + ctx.dp(8):
                break
            width = min(max_w, int(max(render.text_width(line, px) for line in lines)) + 2 * pad + ctx.dp(2))
            sent = msg["type"] == "2"
            left = ctx.width - ctx.dp(16) - width if sent else ctx.dp(16)
            placed.append(View(v.TEXT, (left, y - h, left + width, y), text=msg["body"], wrap=True, size=px, pad=pad,
                               bg=w.ACCENT if sent else (233, 236, 239), fg=w.WHITE if sent else w.INK,
                               radius=ctx.dp(18), rid=f"{PKG}:id/message_text"))  # fmt: skip
            y -= h + ctx.dp(8)
        box.add(*reversed(placed))
        return box

    def matching_contacts(self, typed: str) -> list[dict[str, str]]:
        """Contacts a typed recipient may mean, as Messages suggests them: a word of the name starts
        with it ("Bob", "smi" → Bob Smith), or the number holds its digits."""
        wanted = typed.strip().casefold()
        if not wanted:
            return []
        digits = re.sub(r"\D", "", wanted)
        dialled = len(digits) >= 3 and not re.search(r"[^\d\s()+-]", wanted)  # typed a number
        found = []
        for c in self.host.state.contacts():
            name = c["display_name"].casefold()
            if dialled:
                if digits in re.sub(r"\D", "", c["number"]):
                    found.append(c)
            elif name.startswith(wanted) or any(word.startswith(wanted) for word in name.split()):
                found.append(c)
        return found

    def _suggestions(self, ctx: Ctx, root: View, typed: str, y: int) -> int:
        """One row per matching contact under the recipient field; a tap opens the conversation."""
        for c in self.matching_contacts(typed)[:4]:
            name, bottom = c["display_name"], y + ctx.dp(w.ROW_H)
            root.add(w.list_row(ctx, y, bottom, name, c["number"], avatar=name[:1].upper(),
                                avatar_color=avatar_color(name), rid=f"{PKG}:id/contact_suggestion",
                                on_click=lambda n=c["number"]: self.choose(n)))  # fmt: skip
            y = bottom
        return y

    def choose(self, number: str) -> None:
        """A suggested contact tapped: the new conversation is addressed to its number."""
        screen = self.top
        if screen is None or screen.name != "conversation":
            return
        screen.args["address"] = number
        screen.fields["to"] = ""
        screen.focus = "body"

    def _resolve_recipient(self, text: str) -> str:
        wanted = text.strip().casefold()
        for c in self.host.state.contacts():
            if c["display_name"].casefold() == wanted:
                return c["number"]
        return text.strip()

    def send(self) -> None:
        screen = self.top
        if screen is None or screen.name != "conversation":
            return
        body = screen.fields.get("body", "")
        address = screen.args.get("address") or self._resolve_recipient(screen.fields.get("to", ""))
        if not body.strip() or not address:
            return
        self.host.state.add_sms(address, body, sent=True, date_ms=self.host.now_ms(), read=True)
        screen.args["address"] = address
        screen.fields = {"body": ""}
        screen.focus = "body"

    def submit(self, screen: Screen, key: str) -> None:
        if key == "to" and screen.fields.get("to", "").strip():
            screen.args["address"] = self._resolve_recipient(screen.fields["to"])
            screen.focus = "body"


__all__ = ["MessagingApp", "parse_sms_uri"]
