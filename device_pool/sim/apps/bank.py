"""Bank (com.phonefleet.bank): a FLAG_SECURE login screen, then an account page that is not secure.

Credentials: username ``demo``, password ``1234`` (any case for the username), or the ``password``
its private data holds (a phone whose owner chose their own: tests that must tell the password
apart from every other string set one there). Its login is a secure window unless that data
holds ``"secure": false``. Like a real banking
app it stays signed in: the login is kept in its private data (``/data/data/com.phonefleet.bank/
files/state.json``, ``{"signed_in": "demo"}``), so a cold start opens the account until "Log out",
``pm clear`` or a factory reset. The balance and transactions are fixed by the seed.
"""

from __future__ import annotations

import random

from device_pool.sim.apps import widgets as w
from device_pool.sim.apps.base import App, Ctx, Screen
from device_pool.sim.views import View

PKG = "com.phonefleet.bank"
LOGIN = f"{PKG}.LoginActivity"
ACCOUNT = f"{PKG}.AccountActivity"
USERNAME, PASSWORD = "demo", "1234"
MERCHANTS = ["Coffee House", "Grocery Mart", "City Transit", "Online Store", "Electric Company", "Salary",
             "Restaurant", "Pharmacy", "Gym Membership", "Book Shop"]  # fmt: skip


def account(seed: int) -> tuple[float, list[tuple[str, float]]]:
    rng = random.Random(seed * 104729 + 3)
    balance = rng.randrange(100_000, 2_000_000) / 100
    tx = []
    for name in rng.sample(MERCHANTS, 6):
        amount = (
            rng.randrange(2_000, 300_000) / 100 if name == "Salary" else -rng.randrange(300, 15_000) / 100
        )
        tx.append((name, amount))
    return balance, tx


class BankApp(App):
    package = PKG
    label_en, label_zh = "Bank", "银行"
    icon_letter, icon_color = "B", (13, 71, 161)
    activities = {LOGIN: "login", ACCOUNT: "account"}  # noqa: RUF012
    status_bg = (13, 71, 161)
    status_fg = (255, 255, 255)

    def create_screen(self, activity: str, data: str | None) -> Screen:
        if self.data().get("signed_in"):
            return Screen(name="account", activity=ACCOUNT)
        # Signed out, every entry point asks for the login first.
        screen = Screen(name="login", activity=LOGIN)
        screen.focus = "username"
        return screen

    def is_secure(self, screen: Screen) -> bool:
        # ``"secure": false`` in its private data: a build without FLAG_SECURE (as debug builds of
        # some apps are), whose login screenshots show the fields.
        return screen.name == "login" and self.data().get("secure", True) is not False

    def build_login(self, ctx: Ctx) -> View:
        root = w.page(ctx, bg=(13, 71, 161))
        m = ctx.dp(28)
        y = ctx.top + ctx.dp(72)
        root.add(w.label(ctx, (m, y, ctx.width - m, y + ctx.dp(56)), ctx.t("My Bank", "我的银行"), size=34, bold=True,
                         color=w.WHITE, align="center", rid=f"{PKG}:id/app_title"))  # fmt: skip
        y += ctx.dp(64)
        root.add(w.label(ctx, (m, y, ctx.width - m, y + ctx.dp(32)), ctx.t("Sign in to your account", "登录您的账户"),
                         size=17, color=(200, 220, 255), align="center"))  # fmt: skip
        y += ctx.dp(64)
        card = View(bounds=(m, y, ctx.width - m, y + ctx.dp(300)), bg=w.WHITE, radius=ctx.dp(20))
        root.add(card)
        fm = m + ctx.dp(20)
        y += ctx.dp(24)
        card.add(w.edit(ctx, (fm, y, ctx.width - fm, y + ctx.dp(60)), "username", ctx.t("Username", "用户名"),
                        rid=f"{PKG}:id/username"))  # fmt: skip
        y += ctx.dp(76)
        card.add(w.edit(ctx, (fm, y, ctx.width - fm, y + ctx.dp(60)), "password", ctx.t("Password", "密码"),
                        rid=f"{PKG}:id/password", password=True))  # fmt: skip
        y += ctx.dp(84)
        card.add(w.button(ctx, (fm, y, ctx.width - fm, y + ctx.dp(56)), ctx.t("Log in", "登录"), self.login,
                          rid=f"{PKG}:id/login_button"))  # fmt: skip
        if ctx.screen.args.get("error"):
            y += ctx.dp(100)
            root.add(w.label(ctx, (m, y, ctx.width - m, y + ctx.dp(40)),
                             ctx.t("Incorrect username or password", "用户名或密码错误"), size=17,
                             color=(255, 205, 210), align="center", rid=f"{PKG}:id/error"))  # fmt: skip
        return root

    def login(self) -> None:
        screen = self.top
        if screen is None or screen.name != "login":
            return
        user = screen.fields.get("username", "").strip().casefold()
        if user == USERNAME and screen.fields.get("password", "") == self.data().get("password", PASSWORD):
            self.save_data({**self.data(), "signed_in": USERNAME})
            self.stack = [Screen(name="account", activity=ACCOUNT)]
        else:
            screen.args["error"] = True
            screen.fields["password"] = ""

    def logout(self) -> None:
        self.save_data({k: v for k, v in self.data().items() if k != "signed_in"})
        self.stack = [self.create_screen(LOGIN, None)]

    def submit(self, screen: Screen, key: str) -> None:
        if key == "username":
            screen.focus = "password"
        elif key == "password":
            self.login()

    def build_account(self, ctx: Ctx) -> View:
        root = w.page(ctx, bg=(245, 247, 250))
        bar, y = w.app_bar(ctx, ctx.t("My Bank", "我的银行"), back=False, bg=(13, 71, 161))
        bar.children[-1].fg = w.WHITE
        root.add(bar)
        bw = ctx.dp(110)
        root.add(w.button(ctx, (ctx.width - ctx.dp(12) - bw, ctx.top + ctx.dp(12), ctx.width - ctx.dp(12),
                                ctx.top + ctx.dp(52)), ctx.t("Log out", "退出"), self.logout,
                          rid=f"{PKG}:id/logout_button", primary=False, size=15))  # fmt: skip
        balance, tx = account(self.host.seed)
        m = ctx.dp(16)
        card = View(bounds=(m, y + m, ctx.width - m, y + m + ctx.dp(150)), bg=w.WHITE, radius=ctx.dp(16))
        card.add(w.label(ctx, (m * 2, y + m * 2, ctx.width - m * 2, y + m * 2 + ctx.dp(30)),
                         ctx.t("Checking account ••6021", "活期账户 ••6021"), size=16, color=w.SUBTLE))  # fmt: skip
        card.add(w.label(ctx, (m * 2, y + m * 2 + ctx.dp(40), ctx.width - m * 2, y + m * 2 + ctx.dp(100)),
                         f"${balance:,.2f}", size=36, bold=True, rid=f"{PKG}:id/balance",
                         desc=ctx.t("Balance", "余额")))  # fmt: skip
        root.add(card)
        y += m + ctx.dp(170)
        root.add(w.label(ctx, (m, y, ctx.width, y + ctx.dp(36)), ctx.t("Recent transactions", "最近交易"), size=17,
                         bold=True))  # fmt: skip
        y += ctx.dp(40)
        for name, amount in tx:
            sign = "+" if amount > 0 else "-"
            root.add(w.list_row(ctx, y, y + ctx.dp(w.ROW_H), name, f"{sign}${abs(amount):,.2f}",
                                rid=f"{PKG}:id/transaction"))  # fmt: skip
            y += ctx.dp(w.ROW_H)
        return root
