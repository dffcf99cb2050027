"""Notes (com.phonefleet.notes): each note is the file /sdcard/Notes/<title>.txt holding its body."""

from __future__ import annotations

from device_pool.sim.apps import widgets as w
from device_pool.sim.apps.base import App, Ctx, Screen
from device_pool.sim.views import View

PKG = "com.phonefleet.notes"
MAIN = f"{PKG}.MainActivity"
EDITOR = f"{PKG}.EditorActivity"


class NotesApp(App):
    package = PKG
    label_en, label_zh = "Notes", "笔记"
    icon_letter, icon_color = "N", (251, 188, 4)
    activities = {MAIN: "list", EDITOR: "editor"}  # noqa: RUF012

    def create_screen(self, activity: str, data: str | None) -> Screen:
        screen = Screen(name=self.activities[activity], activity=activity)
        if screen.name == "editor":
            screen.focus = "title"
        return screen

    def build_list(self, ctx: Ctx) -> View:
        root = w.page(ctx)
        bar, y = w.app_bar(ctx, ctx.t("Notes", "笔记"), back=False)
        root.add(bar)
        rows = []
        for title, body in self.host.state.notes():
            first = next((line for line in body.splitlines() if line.strip()), "")
            rows.append((ctx.dp(w.ROW_H + 8), lambda t, b, ti=title, bo=body, f=first: w.list_row(
                ctx, t, b, ti, f, rid=f"{PKG}:id/note_row", title_rid=f"{PKG}:id/note_title_text",
                on_click=lambda ti=ti, bo=bo: self.edit(ti, bo))))  # fmt: skip
        if not rows:
            root.add(w.label(ctx, (0, y + ctx.dp(40), ctx.width, y + ctx.dp(90)), ctx.t("No notes yet", "还没有笔记"),
                             align="center", color=w.SUBTLE))  # fmt: skip
        root.add(w.scroll_list(ctx, "notes", (0, y, ctx.width, ctx.height), rows, rid=f"{PKG}:id/notes_list"))
        root.add(w.fab(ctx, ctx.t("New note", "新建笔记"), self.new_note, rid=f"{PKG}:id/fab_new"))
        return root

    def new_note(self) -> None:
        self.push("editor", EDITOR).focus = "title"

    def edit(self, title: str, body: str) -> None:
        screen = self.push("editor", EDITOR, old_title=title)
        screen.fields = {"title": title, "body": body}
        screen.focus = "body"

    def build_editor(self, ctx: Ctx) -> View:
        screen = ctx.screen
        root = w.page(ctx)
        editing = bool(screen.args.get("old_title"))
        bar, y = w.app_bar(ctx, ctx.t("Edit note", "编辑笔记") if editing else ctx.t("New note", "新建笔记"))
        root.add(bar)
        bw = ctx.dp(100)
        root.add(w.button(ctx, (ctx.width - ctx.dp(16) - bw, ctx.top + ctx.dp(10), ctx.width - ctx.dp(16),
                                ctx.top + ctx.dp(54)), ctx.t("Save", "保存"), self.save,
                          rid=f"{PKG}:id/save_button"))  # fmt: skip
        m = ctx.dp(20)
        root.add(w.edit(ctx, (m, y + ctx.dp(8), ctx.width - m, y + ctx.dp(72)), "title", ctx.t("Title", "标题"),
                        rid=f"{PKG}:id/note_title", size=22))  # fmt: skip
        y += ctx.dp(88)
        bottom = ctx.height - ctx.dp(96) if editing else ctx.height - ctx.dp(24)
        root.add(w.edit(ctx, (m, y, ctx.width - m, bottom), "body", ctx.t("Note", "笔记内容"),
                        rid=f"{PKG}:id/note_body", wrap=True, size=18))  # fmt: skip
        if editing:
            root.add(w.button(ctx, (m, ctx.height - ctx.dp(80), ctx.width - m, ctx.height - ctx.dp(28)),
                              ctx.t("Delete", "删除"), self.delete, rid=f"{PKG}:id/delete_button",
                              primary=False))  # fmt: skip
        return root

    def save(self) -> None:
        screen = self.top
        if screen is None:
            return
        title = screen.fields.get("title", "").strip()
        body = screen.fields.get("body", "")
        if not title and not body.strip():
            return
        if not title:
            title = next((line.strip() for line in body.splitlines() if line.strip()), "Untitled")[:40]
        self.host.state.save_note(title, body, screen.args.get("old_title"))
        self._to_list()

    def delete(self) -> None:
        screen = self.top
        if screen is not None and screen.args.get("old_title"):
            self.host.state.delete_note(screen.args["old_title"])
        self._to_list()

    def _to_list(self) -> None:
        if not self.back():  # the editor was started on its own: show the list instead
            self.stack = [Screen(name="list", activity=MAIN)]

    def submit(self, screen: Screen, key: str) -> None:
        if key == "title":
            screen.focus = "body"
        elif key == "body":
            screen.fields["body"] = screen.fields.get("body", "") + "\n"
