"""Shop (com.phonefleet.shop): search, product pages, a cart and a checkout whose Pay is sensitive.

The advert pop-up: the first cold launch after a factory reset (or `pm clear`) always shows it;
later cold launches show it when ``random.Random(seed * 7919 + launches).random() < 0.5``, so a
seed fixes the whole sequence. Paid orders are kept in
``/data/data/com.phonefleet.shop/files/orders.json`` (a list of {"id", "status": "paid", "items",
"total", "time"}); the cart and the launch count in ``files/state.json``.
"""

from __future__ import annotations

import random

from device_pool.sim import views as v
from device_pool.sim.apps import widgets as w
from device_pool.sim.apps.base import App, Ctx, Screen
from device_pool.sim.views import View

PKG = "com.phonefleet.shop"
MAIN = f"{PKG}.MainActivity"
CATALOG = [
    "Wireless Earbuds", "Phone Case", "USB-C Cable", "Power Bank 10000mAh", "Smart Watch", "Bluetooth Speaker",
    "Screen Protector", "Laptop Stand", "Mechanical Keyboard", "Wireless Mouse", "Desk Lamp", "Coffee Mug",
    "Water Bottle", "Backpack", "Running Shoes", "Yoga Mat", "Notebook", "Ballpoint Pens", "Sunglasses",
    "Umbrella", "Phone Charger", "Headphones",
]  # fmt: skip
# The same products as a zh-CN phone lists them (one per CATALOG name, in its order).
CATALOG_ZH = [
    "无线耳机", "手机壳", "USB-C 数据线", "充电宝 10000mAh", "智能手表", "蓝牙音箱",
    "屏幕保护膜", "笔记本电脑支架", "机械键盘", "无线鼠标", "台灯", "咖啡杯",
    "水杯", "双肩包", "跑鞋", "瑜伽垫", "笔记本", "圆珠笔", "太阳镜",
    "雨伞", "手机充电器", "头戴式耳机",
]  # fmt: skip


def catalog(seed: int) -> list[dict]:
    """The products, with prices fixed by the seed."""
    rng = random.Random(seed * 31 + 5)
    return [{"id": f"p{i + 1:02d}", "name": name, "name_zh": CATALOG_ZH[i], "price": rng.randrange(499, 19999) / 100,
             "rating": round(rng.uniform(3.5, 5.0), 1)} for i, name in enumerate(CATALOG)]  # fmt: skip


def matches(product: dict, query: str) -> bool:
    """A search hit, as shops index titles in every language they sell in: each word of the query is
    in the English name, or the query (spaces aside) is in the Chinese one, which has no spaces."""
    words = query.casefold().split()
    if words and all(word in product["name"].casefold() for word in words):
        return True
    flat = "".join(words)
    return bool(flat) and flat in product["name_zh"].replace(" ", "").casefold()


def money(value: float) -> str:
    return f"${value:,.2f}"


class ShopApp(App):
    package = PKG
    label_en, label_zh = "Shop", "商城"
    icon_letter, icon_color = "$", (217, 48, 37)
    activities = {MAIN: "home"}  # noqa: RUF012

    def __init__(self, host) -> None:
        super().__init__(host)
        self._ad_next = False

    @property
    def products(self) -> list[dict]:
        return catalog(self.host.seed)

    @staticmethod
    def name(ctx: Ctx, product: dict) -> str:
        """The product's name in the phone's language."""
        return ctx.t(product["name"], product["name_zh"])

    def product(self, pid: str) -> dict | None:
        return next((p for p in self.products if p["id"] == pid), None)

    def on_cold_start(self) -> None:
        data = self.data()
        launches = int(data.get("launches", 0))
        self._ad_next = launches == 0 or random.Random(self.host.seed * 7919 + launches).random() < 0.5
        data["launches"] = launches + 1
        self.save_data(data)

    def create_screen(self, activity: str, data: str | None) -> Screen:
        screen = Screen(name="home", activity=MAIN, args={"ad": self._ad_next})
        self._ad_next = False
        return screen

    def back(self) -> bool:
        top = self.top
        if top is not None and top.args.get("ad"):  # the pop-up is a dialog: BACK closes it
            top.args["ad"] = False
            return True
        return super().back()

    def _cart(self) -> dict[str, int]:
        return dict(self.data().get("cart", {}))

    def _save_cart(self, cart: dict[str, int]) -> None:
        data = self.data()
        data["cart"] = cart
        self.save_data(data)

    # ---- screens
    def _bar(self, ctx: Ctx, title: str, back: bool) -> tuple[View, View, int]:
        root = w.page(ctx, bg=(248, 249, 250))
        bar, y = w.app_bar(ctx, title, back=back, bg=(248, 249, 250))
        root.add(bar)
        count = sum(self._cart().values())
        bw = ctx.dp(110)
        root.add(w.button(ctx, (ctx.width - ctx.dp(12) - bw, ctx.top + ctx.dp(12), ctx.width - ctx.dp(12),
                                ctx.top + ctx.dp(52)), f"{ctx.t('Cart', '购物车')} ({count})", self.open_cart,
                          rid=f"{PKG}:id/cart_button", primary=False, size=15))  # fmt: skip
        return root, bar, y

    def _search_box(self, ctx: Ctx, y: int) -> list[View]:
        m, h = ctx.dp(16), ctx.dp(52)
        sw = ctx.dp(52)
        field = w.edit(ctx, (m, y, ctx.width - m - sw - ctx.dp(8), y + h), "query",
                       ctx.t("Search products", "搜索商品"), rid=f"{PKG}:id/search_box", boxed=True)  # fmt: skip
        button = View(v.IMAGE_BUTTON, (ctx.width - m - sw, y, ctx.width - m, y + h), desc=ctx.t("Search", "搜索"),
                      rid=f"{PKG}:id/search_button", icon="search", fg=w.WHITE, bg=w.ACCENT, radius=h // 2,
                      clickable=True, focusable=True, on_click=lambda: self.submit(ctx.screen, "query"))  # fmt: skip
        return [field, button]

    def _product_rows(self, ctx: Ctx, products: list[dict]) -> list:
        rows = []
        for p in products:
            rows.append((ctx.dp(96), lambda t, b, p=p: self._product_row(ctx, t, b, p)))
        return rows

    def _product_row(self, ctx: Ctx, top: int, bottom: int, p: dict) -> View:
        row = View(v.LINEAR, (0, top, ctx.width, bottom), clickable=True, focusable=True, rid=f"{PKG}:id/product_row",
                   on_click=lambda: self.push("product", pid=p["id"]))  # fmt: skip
        s = ctx.dp(72)
        x = ctx.dp(16)
        row.add(View(v.IMAGE, (x, top + ctx.dp(12), x + s, top + ctx.dp(12) + s), icon=f"photo:{p['id']}",
                     desc=self.name(ctx, p), rid=f"{PKG}:id/product_image"))  # fmt: skip
        x += s + ctx.dp(16)
        mid = (top + bottom) // 2
        row.add(w.label(ctx, (x, top + ctx.dp(10), ctx.width - ctx.dp(16), mid), self.name(ctx, p), size=18,
                        rid=f"{PKG}:id/product_name"))  # fmt: skip
        row.add(w.label(ctx, (x, mid, ctx.width - ctx.dp(16), bottom - ctx.dp(10)),
                        f"{money(p['price'])}  ·  ★ {p['rating']}", size=15, color=(217, 48, 37),
                        rid=f"{PKG}:id/product_price"))  # fmt: skip
        row.add(w.divider(ctx, bottom - 2, x))
        return row

    def build_home(self, ctx: Ctx) -> View:
        root, _, y = self._bar(ctx, ctx.t("Shop", "商城"), back=False)
        root.add(*self._search_box(ctx, y + ctx.dp(4)))
        y += ctx.dp(68)
        root.add(w.label(ctx, (ctx.dp(16), y, ctx.width, y + ctx.dp(36)), ctx.t("Recommended for you", "为你推荐"),
                         size=16, bold=True, color=w.SUBTLE))  # fmt: skip
        y += ctx.dp(40)
        root.add(w.scroll_list(ctx, "products", (0, y, ctx.width, ctx.height), self._product_rows(ctx, self.products),
                               rid=f"{PKG}:id/product_list"))  # fmt: skip
        if ctx.screen.args.get("ad"):
            root.add(self._ad(ctx))
        return root

    def _ad(self, ctx: Ctx) -> View:
        screen = ctx.screen
        overlay = View(v.FRAME, (0, ctx.top, ctx.width, ctx.height), bg=(0, 0, 0, 140), clickable=True,
                       rid=f"{PKG}:id/ad_overlay", on_click=lambda: None)  # fmt: skip
        m = ctx.dp(32)
        top, bottom = ctx.height // 2 - ctx.dp(200), ctx.height // 2 + ctx.dp(200)
        card = View(
            v.FRAME, (m, top, ctx.width - m, bottom), bg=w.WHITE, radius=ctx.dp(20), rid=f"{PKG}:id/ad_dialog"
        )
        close = ctx.dp(48)

        def close_ad() -> None:
            screen.args["ad"] = False

        def shop_now() -> None:
            screen.args["ad"] = False
            self.push("product", pid=self.products[0]["id"])

        card.add(View(v.BUTTON, (ctx.width - m - close - ctx.dp(8), top + ctx.dp(8), ctx.width - m - ctx.dp(8),
                                 top + ctx.dp(8) + close), text="×", desc=ctx.t("Close", "关闭"),
                      rid=f"{PKG}:id/ad_close", clickable=True, focusable=True, size=ctx.dp(30), align="center",
                      fg=w.SUBTLE, bg=(241, 243, 244), radius=close // 2, on_click=close_ad))  # fmt: skip
        card.add(View(v.IMAGE, (ctx.width // 2 - ctx.dp(60), top + ctx.dp(60), ctx.width // 2 + ctx.dp(60),
                                top + ctx.dp(180)), icon=f"photo:{self.products[0]['id']}",
                      rid=f"{PKG}:id/ad_image"))  # fmt: skip
        card.add(w.label(ctx, (m, top + ctx.dp(196), ctx.width - m, top + ctx.dp(240)),
                         ctx.t("Flash Sale! 50% off", "限时抢购！五折优惠"), size=24, bold=True, align="center",
                         rid=f"{PKG}:id/ad_title"))  # fmt: skip
        card.add(w.label(ctx, (m, top + ctx.dp(244), ctx.width - m, top + ctx.dp(280)),
                         ctx.t(f"{self.products[0]['name']} today only", f"{self.products[0]['name_zh']} 仅限今天"),
                         size=16, align="center", color=w.SUBTLE))  # fmt: skip
        card.add(w.button(ctx, (m + ctx.dp(40), bottom - ctx.dp(84), ctx.width - m - ctx.dp(40), bottom - ctx.dp(32)),
                          ctx.t("Shop now", "立即抢购"), shop_now, rid=f"{PKG}:id/ad_action"))  # fmt: skip
        overlay.add(card)
        return overlay

    def build_results(self, ctx: Ctx) -> View:
        query = ctx.screen.args.get("query", "")
        root, _, y = self._bar(ctx, ctx.t("Results", "搜索结果"), back=True)
        root.add(*self._search_box(ctx, y + ctx.dp(4)))
        y += ctx.dp(68)
        found = [p for p in self.products if matches(p, query)]
        summary = ctx.t(f'{len(found)} results for "{query}"', f"“{query}”的搜索结果：{len(found)} 个")
        if not found:
            summary = ctx.t(f'No results for "{query}"', f"没有找到“{query}”的结果")
        root.add(w.label(ctx, (ctx.dp(16), y, ctx.width - ctx.dp(16), y + ctx.dp(36)), summary, size=16,
                         color=w.SUBTLE, rid=f"{PKG}:id/results_summary"))  # fmt: skip
        y += ctx.dp(40)
        root.add(w.scroll_list(ctx, "results", (0, y, ctx.width, ctx.height), self._product_rows(ctx, found),
                               rid=f"{PKG}:id/results_list"))  # fmt: skip
        return root

    def submit(self, screen: Screen, key: str) -> None:
        if key != "query":
            return
        query = screen.fields.get("query", "").strip()
        if not query:
            return
        if screen.name == "results":
            screen.args["query"] = query
            screen.scroll.clear()
        else:
            new = self.push("results", query=query)
            new.fields["query"] = query
        screen.focus = ""

    def build_product(self, ctx: Ctx) -> View:
        p = self.product(ctx.screen.args.get("pid", ""))
        root, _, y = self._bar(ctx, ctx.t("Product", "商品详情"), back=True)
        if p is None:
            return root
        m = ctx.dp(20)
        img_h = ctx.dp(240)
        root.add(View(v.IMAGE, (m, y + ctx.dp(8), ctx.width - m, y + ctx.dp(8) + img_h), icon=f"photo:{p['id']}",
                      desc=self.name(ctx, p), rid=f"{PKG}:id/product_image"))  # fmt: skip
        y += img_h + ctx.dp(24)
        root.add(w.label(ctx, (m, y, ctx.width - m, y + ctx.dp(44)), self.name(ctx, p), size=26, bold=True,
                         rid=f"{PKG}:id/product_title"))  # fmt: skip
        y += ctx.dp(48)
        root.add(w.label(ctx, (m, y, ctx.width - m, y + ctx.dp(40)), money(p["price"]), size=24,
                         color=(217, 48, 37), rid=f"{PKG}:id/product_detail_price"))  # fmt: skip
        y += ctx.dp(44)
        root.add(w.label(ctx, (m, y, ctx.width - m, y + ctx.dp(32)), f"★ {p['rating']}  ·  {ctx.t('Free delivery', '免运费')}",
                         size=16, color=w.SUBTLE))  # fmt: skip
        y += ctx.dp(56)
        root.add(w.button(ctx, (m, y, ctx.width - m, y + ctx.dp(56)), ctx.t("Add to cart", "加入购物车"),
                          lambda: self.add_to_cart(p["id"]), rid=f"{PKG}:id/add_to_cart"))  # fmt: skip
        if ctx.screen.args.get("added"):
            y += ctx.dp(68)
            root.add(w.label(ctx, (m, y, ctx.width - m, y + ctx.dp(36)), ctx.t("Added to cart", "已加入购物车"),
                             size=17, color=(52, 168, 83), align="center", rid=f"{PKG}:id/added_message"))  # fmt: skip
        return root

    def add_to_cart(self, pid: str) -> None:
        cart = self._cart()
        cart[pid] = cart.get(pid, 0) + 1
        self._save_cart(cart)
        if self.top is not None:
            self.top.args["added"] = True

    def open_cart(self) -> None:
        if self.top is None or self.top.name != "cart":
            self.push("cart")

    def build_cart(self, ctx: Ctx) -> View:
        root, _, y = self._bar(ctx, ctx.t("Cart", "购物车"), back=True)
        cart = self._cart()
        m = ctx.dp(20)
        total = 0.0
        rows = []
        for pid, qty in cart.items():
            p = self.product(pid)
            if p is None:
                continue
            total += p["price"] * qty
            rows.append((ctx.dp(w.ROW_H), lambda t, b, p=p, q=qty: w.list_row(
                ctx, t, b, self.name(ctx, p), f"{q} × {money(p['price'])}", rid=f"{PKG}:id/cart_item")))  # fmt: skip
        if not rows:
            root.add(w.label(ctx, (0, y + ctx.dp(40), ctx.width, y + ctx.dp(90)), ctx.t("Your cart is empty", "购物车是空的"),
                             align="center", color=w.SUBTLE, rid=f"{PKG}:id/empty_cart"))  # fmt: skip
        footer = ctx.height - ctx.dp(150)
        root.add(w.scroll_list(ctx, "cart", (0, y, ctx.width, footer), rows, rid=f"{PKG}:id/cart_list"))
        root.add(w.label(ctx, (m, footer + ctx.dp(8), ctx.width - m, footer + ctx.dp(52)),
                         f"{ctx.t('Total', '合计')}: {money(total)}", size=22, bold=True, rid=f"{PKG}:id/cart_total"))  # fmt: skip
        root.add(w.button(ctx, (m, footer + ctx.dp(64), ctx.width - m, footer + ctx.dp(120)), ctx.t("Checkout", "去结算"),
                          lambda: self.push("checkout"), rid=f"{PKG}:id/checkout_button", enabled=bool(rows)))  # fmt: skip
        return root

    def build_checkout(self, ctx: Ctx) -> View:
        root = w.page(ctx, bg=(248, 249, 250))
        bar, y = w.app_bar(ctx, ctx.t("Checkout", "结算"), bg=(248, 249, 250))
        root.add(bar)
        m = ctx.dp(20)
        total = sum((self.product(pid) or {"price": 0})["price"] * q for pid, q in self._cart().items())
        facts = [(ctx.t("Ship to", "收货地址"), "Alex Morgan, 1 Market St, San Francisco"),
                 (ctx.t("Payment", "支付方式"), "Visa •••• 4242"),
                 (ctx.t("Order total", "订单金额"), money(total))]  # fmt: skip
        for title, value in facts:
            root.add(w.list_row(ctx, y, y + ctx.dp(w.ROW_H), title, value, rid=f"{PKG}:id/checkout_item"))
            y += ctx.dp(w.ROW_H)
        y += ctx.dp(24)
        root.add(w.button(ctx, (m, y, ctx.width - m, y + ctx.dp(56)), f"{ctx.t('Pay', '支付')} {money(total)}", self.pay,
                          rid=f"{PKG}:id/pay_button", desc=ctx.t("Pay", "支付"), enabled=total > 0))  # fmt: skip
        return root

    def pay(self) -> None:
        """The sensitive action: records a paid order and empties the cart."""
        cart = self._cart()
        items = [{"id": pid, "name": p["name"], "qty": q, "price": p["price"]}
                 for pid, q in cart.items() if (p := self.product(pid)) is not None]  # fmt: skip
        if not items:
            return
        orders = self.host.state.app_data(PKG, "orders") or []
        order = {"id": f"ORD-{self.host.seed % 1000:03d}-{len(orders) + 1:04d}", "status": "paid", "items": items,
                 "total": round(sum(i["price"] * i["qty"] for i in items), 2), "time": self.host.now_ms()}  # fmt: skip
        orders.append(order)
        self.host.state.save_app_data(PKG, orders, "orders")
        self._save_cart({})
        self.stack = [self.stack[0], Screen(name="done", activity=MAIN, args={"order": order["id"]})]

    def build_done(self, ctx: Ctx) -> View:
        root = w.page(ctx)
        bar, y = w.app_bar(ctx, ctx.t("Order placed", "下单成功"))
        root.add(bar)
        m = ctx.dp(20)
        root.add(w.label(ctx, (m, y + ctx.dp(40), ctx.width - m, y + ctx.dp(90)), ctx.t("Payment successful", "支付成功"),
                         size=26, bold=True, align="center", color=(52, 168, 83), rid=f"{PKG}:id/success_title"))  # fmt: skip
        root.add(w.label(ctx, (m, y + ctx.dp(100), ctx.width - m, y + ctx.dp(140)),
                         f"{ctx.t('Order', '订单号')} {ctx.screen.args.get('order', '')}", size=18, align="center",
                         rid=f"{PKG}:id/order_id"))  # fmt: skip
        root.add(w.button(ctx, (m, y + ctx.dp(180), ctx.width - m, y + ctx.dp(236)), ctx.t("Continue shopping", "继续购物"),
                          lambda: self.back(), rid=f"{PKG}:id/continue_button"))  # fmt: skip
        return root
