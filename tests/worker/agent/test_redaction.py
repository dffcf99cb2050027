"""Redaction on the virtual phone's own screens: the password field's bounds from its view tree are
black in the masked screenshot and nothing else is; opt-in text patterns mask whole matches only;
and the step keeps bounds and kinds, never content. (The sent and stored images of a real run are
checked end to end in tests/worker/runtask/test_secrets.py.)"""

from __future__ import annotations

import base64
import io
from pathlib import Path

from PIL import Image, ImageDraw, ImageOps

from device_pool.driver import AdbDevice
from device_pool.sim.phone import PhoneConfig, VirtualPhone
from device_pool.sim.render import font
from orchestrator.settings import DEFAULT_TEXT_PATTERNS
from tests.aio import run
from tests.ui import tap_node, wait_for_node
from tests.worker.agent.model_servers import ModelServer, Reply, serve
from tests.worker.agent.test_loop import Recorder, client
from worker.agent.loop import AgentConfig, run_agent
from worker.agent.redaction import PASSWORD, RedactionRules, mask, ocr_regions, regions
from worker.agent.results import RunStatus


def _bank_login(tmp_path: Path, typed: str, **config: int) -> VirtualPhone:
    phone = VirtualPhone(tmp_path / "phone", PhoneConfig(launch_delay_ms=0, **config))
    phone.state.save_app_data("com.phonefleet.bank", {"secure": False})  # its login, in plain sight
    phone.start_activity(package="com.phonefleet.bank")
    node = phone.find(rid="com.phonefleet.bank:id/password")
    assert node is not None
    phone.tap(*node.center)
    phone.type_text(typed)
    return phone


def test_a_password_field_is_black_and_the_rest_untouched(tmp_path: Path) -> None:
    phone = _bank_login(tmp_path, "s3cretpw")
    image = phone.frame().image().convert("RGB")
    size = image.size
    found = regions(phone.ui_xml(), RedactionRules(), size, size)
    assert [r.kind for r in found] == [PASSWORD], found
    field = phone.find(rid="com.phonefleet.bank:id/password")
    assert found[0].bounds == tuple(field.bounds), (found[0], field.bounds)
    masked = mask(image, found)
    assert masked.crop(found[0].bounds).convert("L").getextrema()[1] == 0
    assert image.crop(found[0].bounds).convert("L").getextrema()[1] > 200  # there was something to hide
    outside = (0, 0, size[0], found[0].bounds[1])
    assert masked.crop(outside).tobytes() == image.crop(outside).tobytes()
    # Scaled with the screenshot (the agent may downscale before the model sees it).
    half = regions(phone.ui_xml(), RedactionRules(), size, (size[0] // 2, size[1] // 2))
    assert half[0].bounds[0] in range(found[0].bounds[0] // 2 - 1, found[0].bounds[0] // 2 + 1)
    assert found[0].as_json() == {"bounds": list(found[0].bounds), "kind": "password"}
    # Off: nothing masked.
    assert regions(phone.ui_xml(), RedactionRules(passwords=False), size, size) == []


def test_text_patterns_mask_whole_matches_only() -> None:
    rules = RedactionRules(passwords=False, patterns=tuple(DEFAULT_TEXT_PATTERNS.items()))

    def node(text: str, top: int) -> str:
        return f'<node text="{text}" class="android.widget.TextView" bounds="[0,{top}][100,{top + 10}]" />'

    texts = ["4111 1111 1111 1111", "Card ending 1111", "123-45-6789", "Your code: 482913", "Balance $1,234.56",
             "Hello"]  # fmt: skip
    xml = "<hierarchy>" + "".join(node(t, i * 20) for i, t in enumerate(texts)) + "</hierarchy>"
    found = regions(xml, rules, (100, 200), (100, 200))
    assert [(r.bounds[1], r.kind) for r in found] == [(0, "card_number"), (40, "national_id"), (60, "one_time_code")]


def _drawn_card(tmp_path: Path) -> tuple[VirtualPhone, Image.Image, tuple[int, int, int, int]]:
    """The Bank login with a card number drawn as pixels (as a picture of a card would show it), in
    no node of the view tree; and where it was drawn."""
    phone = _bank_login(tmp_path, "s3cretpw")  # 1080×2400: OCR reads it at half size, boxes scaled back
    image = phone.frame().image().convert("RGB")
    draw = ImageDraw.Draw(image)
    where = (60, 80)
    draw.rectangle((20, 60, image.size[0] - 20, 160), fill=(255, 255, 255))
    draw.text(where, "4111 1111 1111 1111", font=font(52), fill=(0, 0, 0))
    drawn = draw.textbbox(where, "4111 1111 1111 1111", font=font(52))
    assert "4111" not in phone.ui_xml()
    return phone, image, drawn


def test_ocr_masks_a_number_drawn_as_pixels_only_for_an_opted_in_tenant(tmp_path: Path) -> None:
    phone, image, drawn = _drawn_card(tmp_path)
    size = image.size
    opted_in = RedactionRules(patterns=tuple(DEFAULT_TEXT_PATTERNS.items()))
    from_tree = regions(phone.ui_xml(), opted_in, size, size)
    assert [r.kind for r in from_tree] == [PASSWORD]  # the tree alone misses the drawn number
    read = ocr_regions(mask(image, from_tree), opted_in, from_tree)
    assert [r.kind for r in read] == ["card_number"], read
    left, top, right, bottom = read[0].bounds
    ink = ImageOps.invert(image.crop(drawn).convert("L")).getbbox()  # the drawn glyphs' own box
    assert ink is not None  # there was something to hide
    ink = (ink[0] + drawn[0], ink[1] + drawn[1], ink[2] + drawn[0], ink[3] + drawn[1])
    assert left <= ink[0] and top <= ink[1] and right >= ink[2] and bottom >= ink[3], (read, ink)
    assert bottom - top < 120  # the line, not the screen
    masked = mask(mask(image, from_tree), read)
    assert masked.crop(ink).convert("L").getextrema()[1] == 0
    assert read[0].as_json() == {"bounds": list(read[0].bounds), "kind": "card_number"}  # bounds and kind only
    # Not opted in (no patterns), or opted in for the view tree's text only: OCR masks nothing.
    assert ocr_regions(image, RedactionRules(), []) == []
    assert ocr_regions(image, RedactionRules(patterns=opted_in.patterns, text_source="ui_tree"), []) == []


def test_a_region_both_sources_find_is_recorded_once() -> None:
    """The same number in the view tree's text and on the screen: the tree's region is kept, and
    OCR adds nothing for it (on the masked image, or on the raw one within the tree's bounds)."""
    image = Image.new("RGB", (360, 120), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    draw.text((30, 40), "123-45-6789", font=font(32), fill=(0, 0, 0))
    left, top, right, bottom = draw.textbbox((30, 40), "123-45-6789", font=font(32))
    xml = (f'<hierarchy><node text="123-45-6789" class="android.widget.TextView" '
           f'bounds="[{left - 10},{top - 10}][{right + 10},{bottom + 10}]" /></hierarchy>')  # fmt: skip
    rules = RedactionRules(passwords=False, patterns=tuple(DEFAULT_TEXT_PATTERNS.items()))
    from_tree = regions(xml, rules, image.size, image.size)
    assert [r.kind for r in from_tree] == ["national_id"]
    assert ocr_regions(mask(image, from_tree), rules, from_tree) == []
    assert ocr_regions(image, rules, from_tree) == []
    # Without the tree's region, OCR finds it on its own (so the two calls above can fail).
    assert [r.kind for r in ocr_regions(image, rules, [])] == ["national_id"]


class _CardOnScreen:
    """The virtual phone, with a card number drawn into every screenshot as pixels, as an app showing
    a picture of a card would: no node of its view tree holds the number. (The virtual phone has no
    such screen; everything else is the real phone over adb.)"""

    def __init__(self, device: AdbDevice) -> None:
        self._device = device

    def __getattr__(self, name: str) -> object:
        return getattr(self._device, name)

    async def screenshot(self, *args: object, **kwargs: object) -> Image.Image:
        image = (await self._device.screenshot(*args, **kwargs)).convert("RGB")
        draw = ImageDraw.Draw(image)
        draw.rectangle((20, 260, image.size[0] - 20, 360), fill=(255, 255, 255))
        draw.text((60, 280), "4111 1111 1111 1111", font=font(52), fill=(0, 0, 0))
        return image


def test_the_model_and_the_step_get_the_drawn_number_masked_for_an_opted_in_tenant(fresh_device: AdbDevice) -> None:
    ink = ImageDraw.Draw(Image.new("RGB", (1, 1))).textbbox((60, 280), "4111 1111 1111 1111", font=font(52))

    async def body(rules: RedactionRules) -> tuple[Image.Image, Image.Image, list[dict]]:
        with serve(ModelServer(Reply('finish(message="seen")'))) as server:
            async with client(server.base_url) as model:
                hooks = Recorder()
                result = await run_agent("Look", _CardOnScreen(fresh_device), model, config=AgentConfig(redaction=rules), hooks=hooks)
            assert result.status == RunStatus.SUCCEEDED, result
            messages = server.requests[0].body["messages"]
            (url,) = [p["image_url"]["url"] for m in messages if isinstance(m["content"], list) for p in m["content"]
                      if p["type"] == "image_url"]  # fmt: skip
            sent = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
            (step,) = hooks.steps
            return sent, step.screenshot, step.redactions

    def darkest_is_black(image: Image.Image, full: tuple[int, int]) -> bool:
        sx, sy = image.size[0] / full[0], image.size[1] / full[1]
        inner = (int(ink[0] * sx) + 2, int(ink[1] * sy) + 2, int(ink[2] * sx) - 2, int(ink[3] * sy) - 2)
        return image.convert("L").crop(inner).getextrema()[1] < 40

    full = run(fresh_device.screen_size())
    sent, stored, recorded = run(body(RedactionRules(patterns=tuple(DEFAULT_TEXT_PATTERNS.items()))))
    assert [r["kind"] for r in recorded] == ["card_number"], recorded
    assert set(recorded[0]) == {"bounds", "kind"}  # never the text
    assert darkest_is_black(sent, full) and darkest_is_black(stored, full)
    sent, stored, recorded = run(body(RedactionRules()))  # not opted in
    assert recorded == []
    assert not darkest_is_black(sent, full) and not darkest_is_black(stored, full)


def test_text_the_model_types_into_a_password_field_is_kept_as_dots(fresh_device: AdbDevice) -> None:
    """The Bank's login, its password field focused: the model's ``Type`` there is carried out but
    recorded as ``•••`` (the step's action and text); typed into the user name field, it is kept."""
    typed = "plain-Typed-Pw-5150"

    async def body() -> list:
        await fresh_device.launch("Bank")
        user = await wait_for_node(fresh_device, rid="username")
        await tap_node(fresh_device, rid="password")
        w, h = await fresh_device.screen_size()
        on_grid = [user.center[0] * 1000 // w, user.center[1] * 1000 // h]
        replies = [
            Reply(f'do(action="Type", text="{typed}")'),
            Reply(f'do(action="Tap", element={on_grid})'),
            Reply('do(action="Type", text="demo")'),
            Reply('finish(message="typed")'),
        ]
        with serve(ModelServer(*replies)) as server:
            async with client(server.base_url) as model:
                hooks = Recorder()
                result = await run_agent("Log in", fresh_device, model, hooks=hooks)
        assert result.status == RunStatus.SUCCEEDED, result
        return hooks.steps

    steps = run(body())
    assert [s.result for s in steps[:3]] == ["ok", "ok", "ok"], [(s.action_text, s.result) for s in steps]
    assert steps[0].action["text"] == "•••" and steps[0].action_text == 'do(action="Type", text="•••")'
    assert typed not in repr(steps)
    assert steps[2].action["text"] == "demo"  # not a password field: kept as typed
