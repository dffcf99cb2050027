"""App names (English and Chinese) to Android package names, extensible per device profile."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

# Several names map to one package: what a user or the model calls the app.
KNOWN_APPS: dict[str, tuple[str, ...]] = {
    # AOSP and Google system apps
    "com.android.launcher3": ("Home screen", "Launcher", "桌面"),
    "com.android.settings": ("Settings", "设置"),
    "com.android.contacts": ("Contacts", "联系人", "通讯录"),
    "com.android.messaging": ("Messages", "Messaging", "SMS", "短信", "信息"),
    "com.android.dialer": ("Phone", "Dialer", "电话", "拨号"),
    "com.android.camera2": ("Camera", "相机"),
    "com.android.deskclock": ("Clock", "Alarm", "时钟", "闹钟"),
    "com.android.calculator2": ("Calculator", "计算器"),
    "com.android.calendar": ("Calendar", "日历"),
    "com.android.documentsui": ("Files", "File Manager", "文件", "文件管理"),
    "com.android.gallery3d": ("Gallery", "Photos", "相册", "图库"),
    "com.android.music": ("Music", "音乐"),
    "com.android.chrome": ("Chrome", "Google Chrome"),
    "com.android.vending": ("Play Store", "Google Play"),
    "com.google.android.gm": ("Gmail",),
    "com.google.android.apps.maps": ("Google Maps", "Maps"),
    "com.google.android.youtube": ("YouTube",),
    # The apps of PhoneFleet's own virtual phone (device_pool/sim)
    "com.phonefleet.notes": ("Notes", "笔记", "备忘录"),
    "com.phonefleet.shop": ("Shop", "商城"),
    "com.phonefleet.bank": ("Bank", "银行"),
    # Widely used third-party apps
    "com.tencent.mm": ("WeChat", "微信"),
    "com.tencent.mobileqq": ("QQ",),
    "com.eg.android.AlipayGphone": ("Alipay", "支付宝"),
    "com.taobao.taobao": ("Taobao", "淘宝"),
    "com.jingdong.app.mall": ("JD", "京东"),
    "com.xunmeng.pinduoduo": ("Pinduoduo", "拼多多"),
    "com.sankuai.meituan": ("Meituan", "美团"),
    "me.ele": ("Ele.me", "饿了么"),
    "com.dianping.v1": ("Dianping", "大众点评"),
    "com.ss.android.ugc.aweme": ("Douyin", "抖音"),
    "com.zhiliaoapp.musically": ("TikTok",),
    "com.xingin.xhs": ("Xiaohongshu", "RED", "小红书"),
    "tv.danmaku.bili": ("Bilibili", "哔哩哔哩", "B站"),
    "com.sina.weibo": ("Weibo", "微博"),
    "com.zhihu.android": ("Zhihu", "知乎"),
    "com.autonavi.minimap": ("Amap", "Gaode Maps", "高德地图"),
    "com.baidu.BaiduMap": ("Baidu Maps", "百度地图"),
    "ctrip.android.view": ("Ctrip", "Trip.com", "携程"),
    "com.MobileTicket": ("12306", "铁路12306"),
    "com.netease.cloudmusic": ("NetEase Cloud Music", "网易云音乐"),
    "com.tencent.qqmusic": ("QQ Music", "QQ音乐"),
    "com.whatsapp": ("WhatsApp",),
    "org.telegram.messenger": ("Telegram",),
    "com.twitter.android": ("X", "Twitter"),
    "com.instagram.android": ("Instagram",),
}

# A package name: two or more dot-separated Java identifiers (``com.android.settings``).
_PACKAGE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)+$")
# A component: ``package/activity`` (``com.android.settings/.Settings``).
_COMPONENT = re.compile(r"^[A-Za-z][A-Za-z0-9_.]*/[A-Za-z0-9_.$]+$")


def _normalise(name: str) -> str:
    # "Google Maps", "google-maps" and "googlemaps" are the same app to a user.
    return re.sub(r"[\s_\-·]+", "", name).casefold()


def is_package_name(value: str) -> bool:
    return bool(_PACKAGE.match(value))


def is_component(value: str) -> bool:
    return bool(_COMPONENT.match(value))


class AppCatalog:
    """Resolves what a user or model calls an app to its package; later entries override earlier ones."""

    def __init__(
        self, extra: Mapping[str, Iterable[str]] | None = None, *, include_known: bool = True
    ) -> None:
        self._by_name: dict[str, str] = {}
        self._labels: dict[str, str] = {}
        if include_known:
            for package, names in KNOWN_APPS.items():
                self.add(package, *names)
        for package, names in (extra or {}).items():
            self.add(package, *names)

    def add(self, package: str, *names: str) -> None:
        """Register display names for ``package`` (the package name itself always resolves)."""
        if not is_package_name(package):
            raise ValueError(f"not a package name: {package!r}")
        for name in names:
            self._by_name[_normalise(name)] = package
        if names:
            self._labels.setdefault(package, names[0])

    def label(self, package: str) -> str:
        """What people call ``package`` (its first registered name), or the package name itself."""
        return self._labels.get(package, package)

    def resolve(self, app: str) -> str | None:
        """The package for a name or package name; None when the name is unknown."""
        app = app.strip()
        found = self._by_name.get(_normalise(app))
        if found is not None:
            return found
        return app if is_package_name(app) else None

    def names(self) -> dict[str, str]:
        """Normalised name → package, for prompts and error messages."""
        return dict(self._by_name)


def find_labelled_icon(ui_xml: str, label: str) -> tuple[int, int] | None:
    """The centre of the clickable node whose text or content-desc is ``label`` (a launcher icon)."""
    import xml.etree.ElementTree as ET

    try:
        root = ET.fromstring(ui_xml)
    except ET.ParseError:
        return None
    wanted = _normalise(label)
    for node in root.iter("node"):
        names = (node.get("text", ""), node.get("content-desc", ""))
        if node.get("clickable") != "true" or wanted not in {_normalise(n) for n in names if n}:
            continue
        m = re.fullmatch(r"\[(-?\d+),(-?\d+)\]\[(-?\d+),(-?\d+)\]", node.get("bounds", ""))
        if m:
            x1, y1, x2, y2 = map(int, m.groups())
            return (x1 + x2) // 2, (y1 + y2) // 2
    return None
