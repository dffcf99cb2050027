"""Contacts (com.android.contacts): the list sorted by name, a contact's page, and the editor."""

from __future__ import annotations

from device_pool.sim import views as v
from device_pool.sim.apps import widgets as w
from device_pool.sim.apps.base import App, Ctx, Screen
from device_pool.sim.views import View

PKG = "com.android.contacts"
PEOPLE = f"{PKG}.activities.PeopleActivity"
EDITOR = f"{PKG}.activities.ContactEditorActivity"
AVATAR_COLORS = [(26, 115, 232), (0, 137, 123), (234, 134, 0), (121, 85, 200), (217, 48, 37), (52, 168, 83)]


def avatar_color(name: str) -> tuple[int, int, int]:
    return AVATAR_COLORS[sum(map(ord, name)) % len(AVATAR_COLORS)]


class ContactsApp(App):
    package = PKG
    label_en, label_zh = "Contacts", "通讯录"
    icon_letter, icon_color = "C", (26, 115, 232)
    activities = {PEOPLE: "list", EDITOR: "editor"}  # noqa: RUF012

    def create_screen(self, activity: str, data: str | None) -> Screen:
        screen = Screen(name=self.activities[activity], activity=activity)
        if screen.name == "editor":
            screen.focus = "name"
        return screen

    def build_list(self, ctx: Ctx) -> View:
        root = w.page(ctx)
        bar, y = w.app_bar(ctx, ctx.t("Contacts", "通讯录"), back=False)
        root.add(bar)
        people = self.host.state.contacts()
        rows = []
        for c in people:
            rows.append((ctx.dp(w.ROW_H), lambda t, b, c=c: w.list_row(
                ctx, t, b, c["display_name"], avatar=c["display_name"][:1].upper(),
                avatar_color=avatar_color(c["display_name"]), rid=f"{PKG}:id/contact_row",
                title_rid=f"{PKG}:id/cliv_name_textview",
                on_click=lambda c=c: self.push("detail", contact_id=c["_id"]))))  # fmt: skip
        if not people:
            root.add(w.label(ctx, (0, y + ctx.dp(40), ctx.width, y + ctx.dp(90)), ctx.t("No contacts", "没有联系人"),
                             align="center", color=w.SUBTLE))  # fmt: skip
        root.add(w.scroll_list(ctx, "contacts", (0, y, ctx.width, ctx.height), rows, rid=f"{PKG}:id/list"))
        root.add(w.fab(ctx, ctx.t("Create contact", "新建联系人"), self.new_contact,
                       rid=f"{PKG}:id/floating_action_button"))  # fmt: skip
        return root

    def new_contact(self) -> None:
        self.push("editor", EDITOR).focus = "name"

    def build_detail(self, ctx: Ctx) -> View:
        cid = ctx.screen.args.get("contact_id")
        contact = next((c for c in self.host.state.contacts() if c["_id"] == cid), None)
        root = w.page(ctx)
        bar, y = w.app_bar(ctx, "")
        root.add(bar)
        if contact is None:
            root.add(w.label(ctx, (0, y, ctx.width, y + ctx.dp(60)), ctx.t("Contact not found", "找不到联系人"),
                             align="center"))  # fmt: skip
            return root
        name, number = contact["display_name"], contact["number"]
        s = ctx.dp(112)
        cx = ctx.width // 2
        root.add(View(v.IMAGE, (cx - s // 2, y + ctx.dp(8), cx + s // 2, y + ctx.dp(8) + s),
                      icon=f"avatar:{name[:1].upper()}", icon_color=avatar_color(name)))  # fmt: skip
        y += s + ctx.dp(20)
        root.add(w.label(ctx, (ctx.dp(16), y, ctx.width - ctx.dp(16), y + ctx.dp(44)), name, size=28,
                         align="center", rid=f"{PKG}:id/large_title"))  # fmt: skip
        y += ctx.dp(60)
        root.add(w.list_row(ctx, y, y + ctx.dp(w.ROW_H), number, ctx.t("Mobile", "手机"), rid=f"{PKG}:id/phone_row",
                            title_rid=f"{PKG}:id/header"))  # fmt: skip
        y += ctx.dp(w.ROW_H + 24)
        bw = (ctx.width - ctx.dp(64)) // 2
        root.add(w.button(ctx, (ctx.dp(24), y, ctx.dp(24) + bw, y + ctx.dp(52)), ctx.t("Message", "发短信"),
                          lambda: self.host.start_activity(action="android.intent.action.SENDTO", data=f"smsto:{number}"),
                          rid=f"{PKG}:id/message_button"))  # fmt: skip
        root.add(w.button(ctx, (ctx.width - ctx.dp(24) - bw, y, ctx.width - ctx.dp(24), y + ctx.dp(52)),
                          ctx.t("Delete", "删除"), lambda: self._delete(cid), rid=f"{PKG}:id/delete_button",
                          primary=False))  # fmt: skip
        return root

    def _delete(self, contact_id: str) -> None:
        self.host.state.delete_contact(contact_id)
        self.back()

    def build_editor(self, ctx: Ctx) -> View:
        root = w.page(ctx)
        bar, y = w.app_bar(ctx, ctx.t("Create contact", "新建联系人"))
        root.add(bar)
        save = w.button(ctx, (ctx.width - ctx.dp(116), ctx.top + ctx.dp(10), ctx.width - ctx.dp(16),
                              ctx.top + ctx.dp(54)), ctx.t("Save", "保存"), self.save,
                        rid=f"{PKG}:id/editor_menu_save_button")  # fmt: skip
        root.add(save)
        m, h = ctx.dp(24), ctx.dp(64)
        y += ctx.dp(16)
        root.add(
            w.edit(
                ctx, (m, y, ctx.width - m, y + h), "name", ctx.t("Name", "姓名"), rid=f"{PKG}:id/editor_name"
            )
        )
        y += h + ctx.dp(16)
        root.add(w.edit(ctx, (m, y, ctx.width - m, y + h), "phone", ctx.t("Phone", "电话"),
                        rid=f"{PKG}:id/editor_phone"))  # fmt: skip
        return root

    def save(self) -> None:
        screen = self.top
        if screen is None:
            return
        name = screen.fields.get("name", "").strip()
        phone = screen.fields.get("phone", "").strip()
        if not name and not phone:
            return
        new_id = self.host.state.add_contact(name or phone, phone)
        # As Android does, saving shows the new contact's page in place of the editor.
        self.stack[-1] = Screen(name="detail", activity=PEOPLE, args={"contact_id": new_id})
        if len(self.stack) == 1:
            self.stack.insert(0, Screen(name="list", activity=PEOPLE))

    def submit(self, screen: Screen, key: str) -> None:
        if screen.name == "editor":
            screen.focus = "phone" if key == "name" else key
