"""Pixels from the tree: fonts, text layout, widgets and the frame cache."""

from __future__ import annotations

import time
from pathlib import Path

from PIL import Image, ImageDraw

from device_pool.sim import imagery, render
from device_pool.sim import views as v
from device_pool.sim.phone import PhoneConfig, VirtualPhone
from device_pool.sim.views import View, Window


def glyph(text: str, px: int = 40) -> bytes:
    image = Image.new("RGB", (px * 3, px * 2), (255, 255, 255))
    render.draw_line(ImageDraw.Draw(image), 4, px, text, px, (0, 0, 0))
    return image.tobytes()


def test_latin_and_cjk_glyphs_are_real() -> None:
    """Missing glyphs draw as identical boxes (tofu); real ones differ from each other."""
    assert glyph("A") != glyph("B")
    assert glyph("设") != glyph("置")
    assert glyph("×") != glyph("•")
    blank = Image.new("RGB", (120, 80), (255, 255, 255)).tobytes()
    assert glyph("Wi") != blank and glyph("飞") != blank


def test_wrap_and_ellipsize() -> None:
    text = "the quick brown fox jumps over the lazy dog " * 3
    lines = render.wrap_lines(text, 20, 200)
    assert len(lines) > 3
    assert all(render.text_width(line, 20) <= 200 for line in lines)
    assert " ".join(lines).split() == text.split()
    cjk = render.wrap_lines("这是一个很长的中文句子需要换行显示在屏幕上", 20, 100)
    assert len(cjk) > 1 and "".join(cjk) == "这是一个很长的中文句子需要换行显示在屏幕上"
    assert render.wrap_lines("a\nb", 20, 200) == ["a", "b"]
    short = render.ellipsize(text, 20, 150)
    assert short.endswith("…") and render.text_width(short, 20) <= 150
    assert render.ellipsize("ok", 20, 150) == "ok"


def test_nodes_draw_only_inside_their_bounds() -> None:
    root = View(v.FRAME, (0, 0, 400, 300), bg=(255, 255, 255))
    root.add(View(v.TEXT, (20, 20, 380, 80), text="Hello 你好", size=30))
    root.add(View(v.SWITCH, (20, 150, 120, 200), checkable=True, checked=True, icon="switch"))
    image = render.render([Window(root)], 400, 300).convert("L")
    assert image.crop((20, 20, 380, 80)).getextrema()[0] < 80
    assert image.crop((20, 150, 120, 200)).getextrema()[0] < 200
    assert image.crop((0, 90, 400, 140)).getextrema() == (255, 255)
    assert image.crop((130, 150, 400, 300)).getextrema() == (255, 255)


def test_switch_state_changes_pixels() -> None:
    def draw(checked: bool) -> bytes:
        node = View(v.SWITCH, (0, 0, 100, 50), checkable=True, checked=checked, icon="switch")
        return render.render([Window(node)], 100, 50).tobytes()

    assert draw(True) != draw(False)


def test_translucent_scrim_stays_opaque() -> None:
    root = View(v.FRAME, (0, 0, 50, 50), bg=(255, 255, 255))
    root.add(View(v.FRAME, (0, 0, 50, 50), bg=(0, 0, 0, 128)))  # type: ignore[arg-type]
    image = render.render([Window(root)], 50, 50)
    r, _, _, a = image.getpixel((25, 25))  # type: ignore[misc]
    assert a == 255 and 100 < r < 160


def test_full_frame_render_is_fast(tmp_path: Path) -> None:
    phone = VirtualPhone(tmp_path / "p", PhoneConfig(launch_delay_ms=0))
    phone.start_activity(package="com.phonefleet.shop")
    start = time.perf_counter()
    phone.frame()
    assert time.perf_counter() - start < 0.5  # tens of ms in practice; generous for loaded CI


def test_frame_counter_overlay(tmp_path: Path) -> None:
    plain = VirtualPhone(tmp_path / "a", PhoneConfig(launch_delay_ms=0))
    counted = VirtualPhone(tmp_path / "b", PhoneConfig(launch_delay_ms=0, show_frame_counter=True))
    assert plain.frame().rgba != counted.frame().rgba
    first = counted.frame()
    counted.start_activity(package="com.android.settings")
    assert counted.frame().seq == first.seq + 1
    corner = (0, 2300, 300, 2400)
    assert counted.frame().image().crop(corner).tobytes() != plain.frame().image().crop(corner).tobytes()


def test_launcher_wallpaper_is_photo_like_and_fixed_by_the_seed(tmp_path: Path) -> None:
    """A real home screen's PNG is ~1 MB (a photo wallpaper); flat colour would be ~80 KB."""
    a = VirtualPhone(tmp_path / "a", PhoneConfig(launch_delay_ms=0, seed=4))
    assert len(a.screencap_png()) > 500_000
    # The tree holds the picture: a full-screen ImageView behind the icons.
    node = next(n for w in a._windows() for n in w.root.walk() if n.icon.startswith("wallpaper:"))
    assert node.cls == v.IMAGE and node.bounds == (0, 0, 1080, 2400)
    body = (0, 1500, 1080, 2400)  # below the icons, so only the wallpaper differs
    same = VirtualPhone(tmp_path / "b", PhoneConfig(launch_delay_ms=0, seed=4))
    other = VirtualPhone(tmp_path / "c", PhoneConfig(launch_delay_ms=0, seed=5))
    assert same.frame().rgba == a.frame().rgba
    assert other.frame().image().crop(body).tobytes() != a.frame().image().crop(body).tobytes()
    # Not just the cache: generating again from scratch gives the same bytes.
    first = imagery.wallpaper(1080, 2400, 4).tobytes()
    imagery._wallpaper.cache_clear()
    assert imagery.wallpaper(1080, 2400, 4).tobytes() == first


def test_shop_pictures_are_cached_photos(tmp_path: Path) -> None:
    phone = VirtualPhone(tmp_path / "p", PhoneConfig(launch_delay_ms=0))
    phone.start_activity(package="com.phonefleet.shop")  # the first launch shows the advert
    pictures = [n for w in phone._windows() for n in w.root.walk() if n.icon.startswith("photo:")]
    assert pictures and all(n.cls == v.IMAGE for n in pictures)
    assert phone.find(rid="com.phonefleet.shop:id/ad_image") is not None
    first, mask = imagery.photo(189, 189, "p01")
    assert first.size == mask.size == (189, 189)
    assert first.getcolors(1000) is None  # over 1000 colours: textured, not a flat tile
    imagery._photo.cache_clear()
    assert imagery.photo(189, 189, "p01")[0].tobytes() == first.tobytes()
    assert imagery.photo(189, 189, "p02")[0].tobytes() != first.tobytes()
    start = time.perf_counter()
    phone.frame()
    assert time.perf_counter() - start < 0.5
