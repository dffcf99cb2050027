"""Redaction on the virtual phone's own screens: the password field's bounds from its view tree are
black in the masked screenshot and nothing else is; opt-in text patterns mask whole matches only;
and the step keeps bounds and kinds, never content. (The sent and stored images of a real run are
checked end to end in tests/worker/runtask/test_secrets.py.)"""

from __future__ import annotations

from pathlib import Path

from device_pool.sim.phone import PhoneConfig, VirtualPhone
from orchestrator.settings import DEFAULT_TEXT_PATTERNS
from worker.agent.redaction import PASSWORD, RedactionRules, mask, regions


def _bank_login(tmp_path: Path, typed: str) -> VirtualPhone:
    phone = VirtualPhone(tmp_path / "phone", PhoneConfig(launch_delay_ms=0))
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
