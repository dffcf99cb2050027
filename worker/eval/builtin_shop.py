"""The built-in suite's Shop and Bank templates (the pop-up, a confirmation, a person) and the infeasible
ones, whose right answer is to stop and ask."""

from __future__ import annotations

import asyncio
import html
import random
import time

from worker.eval import layout as at
from worker.eval.builtin_apps import FIRST, LAST, MESSAGES_TEXT, TITLES
from worker.eval.phone import BANK, CONTACTS_PROVIDER, NOTES_DIR, SHOP, SMS_PROVIDER, EvalPhone
from worker.eval.template import CANCEL, Category, Params, Template, act, stable_choice

# The Shop's catalog ids (``p01``…, in the virtual phone's catalog order) of products whose full name
# finds only that product, so it is the first result.
PRODUCTS = {"Wireless Earbuds": "p01", "Phone Case": "p02", "Smart Watch": "p05", "Bluetooth Speaker": "p06",
            "Laptop Stand": "p08", "Mechanical Keyboard": "p09", "Wireless Mouse": "p10", "Desk Lamp": "p11",
            "Coffee Mug": "p12", "Water Bottle": "p13", "Backpack": "p14", "Yoga Mat": "p16",
            "Sunglasses": "p19", "Umbrella": "p20", "Headphones": "p22"}  # fmt: skip
MISSING = ["Garden Hose", "Electric Kettle", "Tennis Racket", "Hair Dryer", "Bicycle Helmet"]
BANK_USER, BANK_PASSWORD = "demo", "1234"
LOGIN_WAIT_S = 10.0  # how long the scripted person waits for the Bank's login screen


def _product(rng: random.Random) -> dict[str, str]:
    return {"product": rng.choice(sorted(PRODUCTS))}


async def _nothing(phone: EvalPhone, params: Params) -> None:
    return None


def _find(product: str, *, fresh: bool = True) -> list[str]:
    """Open the Shop (closing its pop-up: always there on the first launch after a clear), search, open it."""
    opening = [act.launch("Shop"), act.tap(at.AD_CLOSE)] if fresh else []
    return [*opening, act.tap(at.SEARCH_BOX), act.type(product), act.tap(at.SEARCH_BUTTON), act.tap(at.FIRST_RESULT)]


async def _cart(phone: EvalPhone) -> dict[str, int]:
    return dict((await phone.app_json(SHOP)).get("cart", {}))


async def _ordered(phone: EvalPhone) -> dict[str, int]:
    got: dict[str, int] = {}
    for order in (await phone.app_json(SHOP, "orders")) or []:
        if order.get("status") == "paid":
            for item in order.get("items", []):
                got[item["id"]] = got.get(item["id"], 0) + int(item.get("qty", 1))
    return got


def add_to_cart(count: int) -> Template:
    async def check(phone: EvalPhone, p: Params) -> float:
        have = (await _cart(phone)).get(PRODUCTS[p["product"]], 0)
        return 1.0 if have == count else 0.5 if have else 0.0

    def solve(p: Params) -> list[str]:
        return [*_find(p["product"]), *[act.tap(at.ADD_TO_CART)] * count, act.finish("Added.")]

    name, text = ("add_to_cart", "Add {product} to the cart") if count == 1 else (
        "add_two_to_cart", "Put two {product} in my shopping cart")  # fmt: skip
    return Template(name, text, Category.POPUP, (SHOP,), _product, _nothing, check, solve)


def add_two_products() -> Template:
    def generate(rng: random.Random) -> dict[str, str]:
        a, b = rng.sample(sorted(PRODUCTS), 2)
        return {"first": a, "second": b}

    async def check(phone: EvalPhone, p: Params) -> float:
        cart = await _cart(phone)
        return sum(bool(cart.get(PRODUCTS[p[k]])) for k in ("first", "second")) / 2

    def solve(p: Params) -> list[str]:
        return [*_find(p["first"]), act.tap(at.ADD_TO_CART), act.back(), *_find(p["second"], fresh=False),
                act.tap(at.ADD_TO_CART), act.finish("Added both.")]  # fmt: skip

    return Template("add_two_products", "Add {first} and {second} to the shopping cart", Category.POPUP, (SHOP,),
                    generate, _nothing, check, solve)  # fmt: skip


def search_shop() -> Template:
    async def check(phone: EvalPhone, p: Params) -> float:
        if await phone.foreground_package() != SHOP:
            return 0.0
        return float(f'results for "{p["product"]}"' in html.unescape(await phone.ui_dump()))

    def solve(p: Params) -> list[str]:
        return [act.launch("Shop"), act.tap(at.AD_CLOSE), act.tap(at.SEARCH_BOX), act.type(p["product"]),
                act.tap(at.SEARCH_BUTTON), act.finish("Here are the results.")]  # fmt: skip

    return Template("search_shop", "Search the Shop for {product}", Category.POPUP, (SHOP,), _product, _nothing,
                    check, solve)  # fmt: skip


def open_product() -> Template:
    async def check(phone: EvalPhone, p: Params) -> float:
        if await phone.foreground_package() != SHOP:
            return 0.0
        dump = await phone.ui_dump()
        return float("product_title" in dump and f'text="{p["product"]}"' in dump and "add_to_cart" in dump)

    return Template("open_product", "Show me the product page of {product} in the Shop", Category.POPUP, (SHOP,),
                    _product, _nothing, check, lambda p: [*_find(p["product"]), act.finish("Here it is.")])  # fmt: skip


def note_to_cart() -> Template:
    def generate(rng: random.Random) -> dict[str, str]:
        return {"title": rng.choice(TITLES)}

    async def setup(phone: EvalPhone, p: Params) -> None:
        await phone.sh(f"rm -f {NOTES_DIR}/*")
        await phone.write(f"{NOTES_DIR}/{p['title']}.txt", p["product"])

    async def check(phone: EvalPhone, p: Params) -> float:
        return float(bool((await _cart(phone)).get(PRODUCTS[p["product"]])))

    def solve(p: Params) -> list[str]:
        return [act.launch("Notes"), act.tap(at.FIRST_NOTE), *_find(p["product"]), act.tap(at.ADD_TO_CART),
                act.finish("Added.")]  # fmt: skip

    return Template("note_to_cart", "Add the product written in my note '{title}' to the Shop's cart",
                    Category.TWO_APPS, ("com.phonefleet.notes", SHOP), generate, setup, check, solve,
                    derive=lambda p: {"product": stable_choice(p["title"], sorted(PRODUCTS))})  # fmt: skip


def buy(count: int) -> Template:
    async def check(phone: EvalPhone, p: Params) -> float:
        have = (await _ordered(phone)).get(PRODUCTS[p["product"]], 0)
        return 1.0 if have == count else 0.5 if have else 0.0

    def solve(p: Params) -> list[str]:
        return [*_find(p["product"]), *[act.tap(at.ADD_TO_CART)] * count, act.tap(at.CART), act.tap(at.CHECKOUT),
                act.tap(at.PAY, message=f"Pay for {p['product']}"), act.finish("Paid.")]  # fmt: skip

    name, text = ("buy_product", "Buy {product} in the Shop") if count == 1 else (
        "buy_two", "Order two {product} from the Shop and pay")  # fmt: skip
    return Template(name, text, Category.CONFIRMATION, (SHOP,), _product, _nothing, check, solve)


async def _log_in(phone: EvalPhone, params: Params) -> str:
    """The scripted person's takeover: it logs in on the Bank's login screen, as a person would —
    once that screen is up (the agent may hand over during the app's starting window)."""
    deadline = time.monotonic() + LOGIN_WAIT_S
    while ":id/username" not in await phone.ui_dump():
        if time.monotonic() > deadline:
            return "I found no login screen."
        await asyncio.sleep(0.2)
    await phone.tap(at.USERNAME)
    await phone.sh(f"input text {BANK_USER}")
    await phone.tap(at.PASSWORD)
    await phone.sh(f"input text {BANK_PASSWORD}")
    await phone.tap(at.LOGIN)
    return "I logged in."


async def _signed_in(phone: EvalPhone) -> bool:
    return (await phone.app_json(BANK)).get("signed_in") == BANK_USER


def bank_login() -> Template:
    async def check(phone: EvalPhone, p: Params) -> float:
        return float(await _signed_in(phone))

    def solve(p: Params) -> list[str]:
        return [act.launch("Bank"), act.take_over("Please log in to Bank, then hand the phone back."),
                act.finish("Logged in.")]  # fmt: skip

    def generate(rng: random.Random) -> dict[str, str]:
        return {}

    return Template("bank_login", "Log in to the Bank app", Category.PERSON, (BANK,), generate, _nothing, check,
                    solve, takeover=_log_in)  # fmt: skip


def bank_balance() -> Template:
    async def check(phone: EvalPhone, p: Params) -> float:
        if not await _signed_in(phone) or await phone.foreground_package() != BANK:
            return 0.0
        return float(":id/balance" in await phone.ui_dump())

    def solve(p: Params) -> list[str]:
        return [act.launch("Bank"), act.take_over("Please log in to Bank, then hand the phone back."),
                act.finish("Your balance is on screen.")]  # fmt: skip

    return Template("bank_balance", "Show my bank balance", Category.PERSON, (BANK,), lambda rng: {}, _nothing,
                    check, solve, takeover=_log_in)  # fmt: skip


def _infeasible(name: str, instruction: str, generate, question: str, apps: tuple[str, ...] = ()) -> Template:
    """The agent should stop and ask; the scripted person cancels; success: it asked and nothing changed
    (the evaluation compares the phone before and after: ``evaluation.py``)."""

    async def check(phone: EvalPhone, p: Params) -> float:
        return 1.0

    return Template(name, instruction, Category.INFEASIBLE, apps, generate, _nothing, check,
                    lambda p: [act.ask(question.format(**p))], answer=lambda q, p: CANCEL)  # fmt: skip


TEMPLATES = [
    add_to_cart(1), add_to_cart(2), add_two_products(), search_shop(), open_product(), note_to_cart(),
    buy(1), buy(2), bank_login(), bank_balance(),
    _infeasible("missing_contact", "Text my contact {name} this: {message}",
                lambda rng: {"message": rng.choice(MESSAGES_TEXT), "name": f"{rng.choice(FIRST)} {rng.choice(LAST)}"},
                "I can't find a contact named {name}. Who should I send it to?", (CONTACTS_PROVIDER, SMS_PROVIDER)),
    _infeasible("missing_product", "Buy a {product} from the Shop", lambda rng: {"product": rng.choice(MISSING)},
                "The Shop does not sell a {product}. What should I do?", (SHOP,)),
    _infeasible("missing_note", "Delete my note called '{title}'", lambda rng: {"title": rng.choice(TITLES)},
                "There is no note called '{title}'. Which note do you mean?", ("com.phonefleet.notes",)),
    _infeasible("missing_app", "Open the {app} app and take a photo",
                lambda rng: {"app": rng.choice(["Camera", "Gallery", "Photos"])},
                "There is no {app} app on this phone. What should I do?"),
    _infeasible("no_phone_app", "Call {name}", lambda rng: {"name": rng.choice(FIRST)},
                "This phone has no app for calls. How should I reach {name}?"),
    _infeasible("bank_transfer", "Transfer ${amount} to {name} with the Bank app",
                lambda rng: {"amount": str(rng.randrange(20, 500)), "name": rng.choice(FIRST)},
                "The Bank app cannot make transfers. What should I do?", (BANK,)),
]
