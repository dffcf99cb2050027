"""Where the phone's screen sits in the video, and how a viewer's normalised point maps back to pixels.

The video is the screen downscaled to at most ``max_width`` pixels wide, both sides multiples of 8
(what hardware encoders accept everywhere). ``screenrecord`` keeps the screen's aspect and
letterboxes it into the requested size (AOSP ``setDisplayProjection``), so the content rectangle is
computed the same way here; viewers send points normalised to the video frame (0–1 across what
they see) and the rectangle turns them into screen pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

from device_pool.android import scrcpy_video_size, screenrecord_projection

__all__ = ["VideoGeometry"]

_ALIGN = 8


@dataclass(frozen=True)
class VideoGeometry:
    screen: tuple[int, int]  # the phone's pixels (wm size)
    video: tuple[int, int]  # the encoded picture
    content: tuple[int, int, int, int]  # the screen inside the video: width, height, x, y

    @classmethod
    def for_screen(cls, width: int, height: int, max_width: int) -> VideoGeometry:
        if width <= 0 or height <= 0:
            raise ValueError(f"bad screen size {width}x{height}")
        vw = min(width, max_width)
        vw -= vw % _ALIGN
        vh = round(vw * height / width)
        vh = max(_ALIGN, vh - vh % _ALIGN)
        return cls((width, height), (vw, vh), screenrecord_projection((width, height), (vw, vh)))

    @classmethod
    def for_scrcpy(cls, width: int, height: int, max_width: int) -> VideoGeometry:
        """The video scrcpy's server streams when asked for at most ``max_width`` across (its
        ``max_size`` caps the longer side, so it is given the height ``for_screen`` would pick)."""
        max_size = max(cls.for_screen(width, height, max_width).video)
        video = scrcpy_video_size((width, height), max_size)
        return cls((width, height), video, screenrecord_projection((width, height), video))

    def to_screen(self, x: float, y: float) -> tuple[int, int]:
        """A point normalised to the video frame (0–1) → screen pixels, clamped onto the screen."""
        vw, vh = self.video
        cw, ch, cx, cy = self.content
        sw, sh = self.screen
        fx = min(max((x * vw - cx) / cw, 0.0), 1.0)
        fy = min(max((y * vh - cy) / ch, 0.0), 1.0)
        return min(round(fx * sw), sw - 1), min(round(fy * sh), sh - 1)

    def as_json(self) -> dict[str, object]:
        cw, ch, cx, cy = self.content
        return {
            "screen": {"width": self.screen[0], "height": self.screen[1]},
            "video": {"width": self.video[0], "height": self.video[1]},
            "content": {"x": cx, "y": cy, "width": cw, "height": ch},
        }
