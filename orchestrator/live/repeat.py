"""The last picture again: a tiny H.264 picture that repeats the one before it, for receivers that
complete a picture only when the next one arrives.

Some receivers (aiortc among them) hand a picture to the decoder only once a packet with a newer
RTP timestamp arrives: the marker bit is not enough for them. A still phone sends nothing after the
last picture of a change, so that picture would wait until the screen next changes — for a viewer
that joins a still phone, forever. scrcpy has the phone's encoder repeat a frame 100 ms after the
last change; screenrecord cannot be asked to, so the stream sends a repeat itself.

The repeat is a *P picture whose macroblocks are all skipped*: every decoder shows the reference
picture unchanged. It is a non-reference picture (``nal_ref_idc`` 0) with the ``frame_num`` the
encoder's next reference picture will also use (H.264 §7.4.3 allows a non-reference picture to share
it), so it changes nothing in the decoder's state that the phone's next picture relies on. Its
slice header is written from the SPS and PPS the phone sent and the last picture's own header:

- CAVLC only (``entropy_coding_mode_flag`` 0: Baseline, and what x264 ultrafast and most phones'
  screenrecord produce); a skipped CABAC slice would need the arithmetic coder;
- frame pictures (no field pictures), one slice group, one colour plane;
- the last picture must be a reference picture (a skipped P picture shows the last *reference*
  picture, which for a non-reference last picture would be an older one).

Otherwise ``repeat()`` falls back to the last picture's own bytes when that is an IDR (decoding an IDR
twice shows it twice) and gives up (None) for anything else.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.live.h264 import IDR, PPS, SLICE, SPS, nal_type

__all__ = ["PictureRepeater"]

_LONG_START = b"\x00\x00\x00\x01"
# profile_idc values whose SPS carries chroma_format_idc, bit depths and scaling matrices (§7.3.2.1.1)
_HIGH_PROFILES = {100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135}


class _Unsupported(Exception):
    """A stream this module cannot write a skipped picture for."""


class _Bits:
    """Reads an RBSP (emulation prevention bytes removed) bit by bit."""

    def __init__(self, rbsp: bytes) -> None:
        self.data = rbsp
        self.pos = 0

    def u(self, n: int) -> int:
        value = 0
        for _ in range(n):
            byte = self.pos >> 3
            if byte >= len(self.data):
                raise _Unsupported("truncated NAL unit")
            value = (value << 1) | ((self.data[byte] >> (7 - (self.pos & 7))) & 1)
            self.pos += 1
        return value

    def ue(self) -> int:
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > 31:
                raise _Unsupported("bad exp-Golomb code")
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        k = self.ue()
        return (k + 1) // 2 if k & 1 else -(k // 2)


class _Writer:
    def __init__(self) -> None:
        self.bits: list[int] = []

    def u(self, n: int, value: int) -> None:
        self.bits.extend((value >> (n - 1 - i)) & 1 for i in range(n))

    def ue(self, value: int) -> None:
        code = value + 1
        self.u(code.bit_length() - 1, 0)
        self.u(code.bit_length(), code)

    def se(self, value: int) -> None:
        self.ue(2 * value - 1 if value > 0 else -2 * value)

    def rbsp(self) -> bytes:
        """The bits with rbsp_trailing_bits (a one, then zeros to the byte boundary)."""
        bits = [*self.bits, 1]
        bits += [0] * (-len(bits) % 8)
        return bytes(int("".join(map(str, bits[i : i + 8])), 2) for i in range(0, len(bits), 8))


def _unescape(nal: bytes) -> bytes:
    """NAL payload → RBSP: drop each emulation prevention byte (00 00 03 → 00 00)."""
    out = bytearray()
    zeros = 0
    for byte in nal:
        if zeros >= 2 and byte == 3:
            zeros = 0
            continue
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def _escape(rbsp: bytes) -> bytes:
    """RBSP → NAL payload: a 03 after two zero bytes wherever the next byte is 00–03."""
    out = bytearray()
    zeros = 0
    for byte in rbsp:
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


@dataclass(frozen=True)
class _Sps:
    chroma_array_type: int
    log2_max_frame_num: int
    poc_type: int
    log2_max_poc_lsb: int
    delta_pic_order_always_zero: bool
    frame_mbs_only: bool
    mbs: int  # PicSizeInMbs of a frame


@dataclass(frozen=True)
class _Pps:
    pps_id: int
    sps_id: int
    cabac: bool
    bottom_field_poc: bool
    slice_groups: int
    weighted_pred: bool
    deblocking_control: bool
    redundant_pic_cnt: bool


def _skip_scaling_list(bits: _Bits, size: int) -> None:
    last = next_ = 8
    for _ in range(size):
        if next_ != 0:
            next_ = (last + bits.se() + 256) % 256
        last = last if next_ == 0 else next_


def _parse_sps(rbsp: bytes) -> tuple[int, _Sps]:
    bits = _Bits(rbsp[1:])
    profile = bits.u(8)
    bits.u(16)  # constraint flags, level_idc
    sps_id = bits.ue()
    chroma_format = 1
    if profile in _HIGH_PROFILES:
        chroma_format = bits.ue()
        if chroma_format == 3 and bits.u(1):  # separate_colour_plane_flag: three slices a picture
            raise _Unsupported("separate colour planes")
        bits.ue()  # bit_depth_luma_minus8
        bits.ue()  # bit_depth_chroma_minus8
        bits.u(1)  # qpprime_y_zero_transform_bypass_flag
        if bits.u(1):  # seq_scaling_matrix_present_flag
            for i in range(8 if chroma_format != 3 else 12):
                if bits.u(1):
                    _skip_scaling_list(bits, 16 if i < 6 else 64)
    log2_max_frame_num = bits.ue() + 4
    poc_type = bits.ue()
    log2_max_poc_lsb, always_zero = 0, False
    if poc_type == 0:
        log2_max_poc_lsb = bits.ue() + 4
    elif poc_type == 1:
        always_zero = bool(bits.u(1))
        bits.se()  # offset_for_non_ref_pic
        bits.se()  # offset_for_top_to_bottom_field
        for _ in range(bits.ue()):
            bits.se()
    elif poc_type != 2:
        raise _Unsupported(f"pic_order_cnt_type {poc_type}")
    bits.ue()  # max_num_ref_frames
    bits.u(1)  # gaps_in_frame_num_value_allowed_flag
    width_mbs = bits.ue() + 1
    height_units = bits.ue() + 1
    frame_mbs_only = bool(bits.u(1))
    sps = _Sps(
        chroma_array_type=chroma_format,
        log2_max_frame_num=log2_max_frame_num,
        poc_type=poc_type,
        log2_max_poc_lsb=log2_max_poc_lsb,
        delta_pic_order_always_zero=always_zero,
        frame_mbs_only=frame_mbs_only,
        mbs=width_mbs * height_units * (1 if frame_mbs_only else 2),
    )
    return sps_id, sps


def _parse_pps(rbsp: bytes) -> _Pps:
    bits = _Bits(rbsp[1:])
    pps_id, sps_id = bits.ue(), bits.ue()
    cabac = bool(bits.u(1))
    bottom_field_poc = bool(bits.u(1))
    slice_groups = bits.ue() + 1
    if slice_groups > 1:
        raise _Unsupported("slice groups")
    bits.ue()  # num_ref_idx_l0_default_active_minus1
    bits.ue()  # num_ref_idx_l1_default_active_minus1
    weighted_pred = bool(bits.u(1))
    bits.u(2)  # weighted_bipred_idc
    bits.se()  # pic_init_qp_minus26
    bits.se()  # pic_init_qs_minus26
    bits.se()  # chroma_qp_index_offset
    deblocking_control = bool(bits.u(1))
    bits.u(1)  # constrained_intra_pred_flag
    redundant = bool(bits.u(1))
    return _Pps(pps_id, sps_id, cabac, bottom_field_poc, slice_groups, weighted_pred, deblocking_control,
                redundant)  # fmt: skip


@dataclass(frozen=True)
class _Picture:
    """What the repeat needs of the last picture: its bytes and its first slice's header."""

    data: bytes
    keyframe: bool
    ref: bool  # nal_ref_idc != 0
    pps: _Pps
    sps: _Sps
    frame_num: int
    poc_lsb: int


def _split(data: bytes) -> list[bytes]:
    """Annex B → NAL units (without start codes)."""
    out = []
    for part in data.split(b"\x00\x00\x01"):
        part = part.rstrip(b"\x00")
        if part:
            out.append(part)
    return out


class PictureRepeater:
    """Remembers the stream's parameter sets and its last picture; writes the repeat of that picture."""

    def __init__(self) -> None:
        self._sps: dict[int, _Sps] = {}
        self._pps: dict[int, _Pps] = {}
        self._last: _Picture | None = None
        self._last_data: tuple[bytes, bool] | None = None  # the last picture, parsed or not

    def observe(self, data: bytes, keyframe: bool) -> None:
        """One picture of the stream (Annex B), in order."""
        self._last_data = (data, keyframe)
        self._last = None
        for nal in _split(data):
            kind = nal_type(nal)
            try:
                if kind == SPS:
                    sps_id, sps = _parse_sps(_unescape(nal))
                    self._sps[sps_id] = sps
                elif kind == PPS:
                    pps = _parse_pps(_unescape(nal))
                    self._pps[pps.pps_id] = pps
                elif kind in (SLICE, IDR) and self._last is None:
                    self._last = self._slice(nal, data, keyframe)
            except _Unsupported:
                self._last = None
            except KeyError:  # a slice naming a parameter set the stream never sent
                self._last = None

    def repeat(self) -> tuple[bytes, bool] | None:
        """The last picture again (Annex B) and whether it is a keyframe: a skipped P picture, else
        the IDR itself; None when neither can be sent."""
        if self._last_data is None:
            return None
        last = self._last
        if last is not None and last.ref and not last.pps.cabac:
            return _LONG_START + _escape(self._skipped(last)), False
        data, keyframe = self._last_data
        return (data, True) if keyframe else None

    def _slice(self, nal: bytes, data: bytes, keyframe: bool) -> _Picture:
        bits = _Bits(_unescape(nal)[1:])
        bits.ue()  # first_mb_in_slice
        bits.ue()  # slice_type
        pps = self._pps[bits.ue()]
        sps = self._sps[pps.sps_id]
        frame_num = bits.u(sps.log2_max_frame_num)
        if not sps.frame_mbs_only and bits.u(1):  # field_pic_flag
            raise _Unsupported("field pictures")
        if nal_type(nal) == IDR:
            bits.ue()  # idr_pic_id
        poc_lsb = bits.u(sps.log2_max_poc_lsb) if sps.poc_type == 0 else 0
        return _Picture(data, keyframe, bool(nal[0] & 0x60), pps, sps, frame_num, poc_lsb)

    @staticmethod
    def _skipped(last: _Picture) -> bytes:
        """A non-reference P slice covering the picture, every macroblock skipped (§7.3.3, §7.3.4)."""
        sps, pps = last.sps, last.pps
        w = _Writer()
        w.u(8, 0x01)  # forbidden_zero_bit 0, nal_ref_idc 0, nal_unit_type 1 (a non-IDR slice)
        w.ue(0)  # first_mb_in_slice
        w.ue(5)  # slice_type P (all slices of the picture are P)
        w.ue(pps.pps_id)
        # The last picture is a reference picture: the next frame_num (the phone's next reference
        # picture will use it too, which a non-reference picture before it may share).
        w.u(sps.log2_max_frame_num, (last.frame_num + 1) % (1 << sps.log2_max_frame_num))
        if not sps.frame_mbs_only:
            w.u(1, 0)  # field_pic_flag: a frame, as the last picture was
        if sps.poc_type == 0:
            # After the last picture in output order; encoders step the POC by 2 a frame (x264,
            # MediaCodec), so this stays before the phone's next picture.
            w.u(sps.log2_max_poc_lsb, (last.poc_lsb + 1) % (1 << sps.log2_max_poc_lsb))
            if pps.bottom_field_poc:
                w.se(0)  # delta_pic_order_cnt_bottom
        elif sps.poc_type == 1 and not sps.delta_pic_order_always_zero:
            w.se(0)  # delta_pic_order_cnt[0]
            if pps.bottom_field_poc:
                w.se(0)
        if pps.redundant_pic_cnt:
            w.ue(0)
        w.u(1, 1)  # num_ref_idx_active_override_flag: one reference picture, the last one
        w.ue(0)  # num_ref_idx_l0_active_minus1
        w.u(1, 0)  # ref_pic_list_modification_flag_l0
        if pps.weighted_pred:  # pred_weight_table: default weights
            w.ue(0)  # luma_log2_weight_denom
            if sps.chroma_array_type != 0:
                w.ue(0)  # chroma_log2_weight_denom
            w.u(1, 0)  # luma_weight_l0_flag
            if sps.chroma_array_type != 0:
                w.u(1, 0)  # chroma_weight_l0_flag
        # nal_ref_idc 0: no dec_ref_pic_marking; CAVLC: no cabac_init_idc
        w.se(0)  # slice_qp_delta
        if pps.deblocking_control:
            w.ue(1)  # disable_deblocking_filter_idc: nothing to filter in a copy
        w.ue(sps.mbs)  # slice_data: mb_skip_run over every macroblock; no more data follows
        return w.rbsp()
