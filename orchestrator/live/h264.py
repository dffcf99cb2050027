"""Raw H.264 (Annex B) from a phone's ``screenrecord``: split into NAL units, grouped into frames.

A raw stream does not say where a frame ends: a NAL unit is known to be complete only when the next
start code arrives. Waiting for the next frame would hold every frame back until the screen changes
again, so ``NalSplitter.flush`` also ends the pending unit when the phone's stream pauses (the
caller decides how long a pause means "the phone finished writing this frame"). If more bytes of
that unit turn up after all, the splitter drops them up to the next start code and reports the
damage, so the caller can ask for a keyframe.

``AccessUnits`` groups NAL units into access units (one picture each) by the rules of H.264
§7.4.1.2.3: a new picture starts at an access unit delimiter, SEI, SPS or PPS after a slice, or at a
slice whose ``first_mb_in_slice`` is 0. It remembers the latest SPS and PPS and puts them in front of
every IDR picture that lacks them, since a viewer that joins at that IDR needs them and phones'
encoders often send them only once.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AccessUnit", "AccessUnits", "NalSplitter"]

START = b"\x00\x00\x01"
_LONG_START = b"\x00\x00\x00\x01"
SLICE, IDR, SEI, SPS, PPS, AUD = 1, 5, 6, 7, 8, 9


def nal_type(nal: bytes) -> int:
    return nal[0] & 0x1F


@dataclass(frozen=True)
class AccessUnit:
    """One picture as Annex B bytes (4-byte start codes); ``keyframe``: an IDR picture."""

    data: bytes
    keyframe: bool


class NalSplitter:
    """Bytes in, complete NAL units (without start codes) out."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._synced = False  # the buffer starts at a start code
        self.damaged = False  # set when bytes had to be dropped; the caller clears it

    @property
    def pending(self) -> bool:
        return bool(self._buf)

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        if not self._synced:
            self._sync()
        units = []
        while self._synced:
            end = self._buf.find(START, 3)
            if end < 0:
                break
            unit = self._unit(end)
            if unit:
                units.append(unit)
        return units

    def flush(self) -> bytes | None:
        """End the pending unit here (the stream paused). Trailing zeros stay: they may begin the
        next start code."""
        if not self._synced:
            return None
        body = bytes(self._buf[3:]).rstrip(b"\x00")
        zeros = len(self._buf) - 3 - len(body)
        self._buf = bytearray(b"\x00" * zeros)
        self._synced = False
        return body or None

    def _unit(self, end: int) -> bytes:
        body = bytes(self._buf[3:end]).rstrip(b"\x00")
        del self._buf[:end]
        return body

    def _sync(self) -> None:
        """Drop bytes up to the first start code (anything before it belongs to a lost unit)."""
        at = self._buf.find(START)
        # No start code yet: keep only trailing zeros, which may be the first bytes of one.
        junk = at if at >= 0 else len(self._buf.rstrip(b"\x00"))
        if self._buf[:junk].strip(b"\x00"):
            self.damaged = True
        del self._buf[:junk]
        self._synced = at >= 0


class AccessUnits:
    """NAL units in, complete access units out."""

    def __init__(self) -> None:
        self._nals: list[bytes] = []
        self._has_slice = False
        self.sps: bytes | None = None
        self.pps: bytes | None = None

    @property
    def pending(self) -> bool:
        return bool(self._nals)

    def push(self, nal: bytes) -> AccessUnit | None:
        """Add one NAL unit; returns the previous access unit when this one starts the next."""
        kind = nal_type(nal)
        done = None
        if self._has_slice and (kind in (AUD, SEI, SPS, PPS) or (kind in (SLICE, IDR) and _first_mb_zero(nal))):
            done = self.flush()
        if kind == SPS:
            self.sps = nal
        elif kind == PPS:
            self.pps = nal
        self._nals.append(nal)
        self._has_slice = self._has_slice or kind in (SLICE, IDR)
        return done

    def flush(self) -> AccessUnit | None:
        """The access unit collected so far, if it holds a picture (parameter sets alone wait)."""
        if not self._has_slice:
            return None
        nals, self._nals, self._has_slice = self._nals, [], False
        kinds = {nal_type(n) for n in nals}
        keyframe = IDR in kinds
        if keyframe and SPS not in kinds and self.sps and self.pps:
            nals = [self.sps, self.pps, *nals]
        return AccessUnit(b"".join(_LONG_START + n for n in nals), keyframe)

    def reset(self) -> None:
        """Forget a half-collected unit (a new capture starts)."""
        self._nals, self._has_slice = [], False


def _first_mb_zero(nal: bytes) -> bool:
    # first_mb_in_slice is the slice header's first field, ue(v): the value 0 is the single bit "1".
    return len(nal) > 1 and bool(nal[1] & 0x80)
