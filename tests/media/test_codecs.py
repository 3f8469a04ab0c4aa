"""inspect_payload: per-codec keyframe / frame-start / droppable detection (sfu/media/codecs.py).

Every payload here is written out byte by byte, with the section of the payload format it
exercises. The VP8 key frame header used below is the 10 bytes RFC 6386 §9.1 puts at the start
of a key frame: a 3-byte frame tag with P=0, start code 9d 01 2a, 16-bit width and height.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sfu.media.codecs import Codec, FrameInfo, PayloadError, inspect_payload

KEY = FrameInfo(keyframe=True, frame_start=True, decodable_alone=True, droppable=False)
START = FrameInfo(keyframe=False, frame_start=True, decodable_alone=False, droppable=False)
MIDDLE = FrameInfo(keyframe=False, frame_start=False, decodable_alone=False, droppable=False)
DROPPABLE_START = FrameInfo(keyframe=False, frame_start=True, decodable_alone=False, droppable=True)
DROPPABLE_MIDDLE = FrameInfo(keyframe=False, frame_start=False, decodable_alone=False, droppable=True)

# RFC 6386 §9.1: frame tag (key frame: P=0 in bit 0; show_frame=1, version 0, first partition
# size), start code, width 640, height 480 (14 bits each, little endian, scale 0)
VP8_KEY_HEADER = bytes([0x10, 0x02, 0x00, 0x9D, 0x01, 0x2A, 0x80, 0x02, 0xE0, 0x01])
VP8_INTER_HEADER = bytes([0x31, 0x02, 0x00])  # P=1: inter frame


def info(codec, payload):
    return inspect_payload(codec, payload)


# ----- VP8: RFC 7741 ------------------------------------------------------------------------------

class TestVp8:
    def test_minimal_descriptor_key_frame(self):
        # §4.2: |X=0|R|N=0|S=1|R|PID=0| then §4.3 payload header with P=0
        assert info(Codec.VP8, bytes([0x10]) + VP8_KEY_HEADER) == KEY

    def test_minimal_descriptor_inter_frame_start(self):
        assert info(Codec.VP8, bytes([0x10]) + VP8_INTER_HEADER) == START

    def test_continuation_packet(self):
        # §4.2: S=0 — not the start of a partition; the payload bytes are not a header
        # (first byte even: would look like P=0, must not be read as a key frame)
        assert info(Codec.VP8, bytes([0x00, 0x00, 0x11])) == MIDDLE

    def test_start_of_a_later_partition_is_not_a_frame_start(self):
        # §4.2: S=1 with PID=1 starts partition 1, not the frame
        assert info(Codec.VP8, bytes([0x11, 0x00, 0x00])) == MIDDLE

    def test_reserved_bit_between_s_and_pid_is_ignored(self):
        # §4.2: R bits MUST be ignored by receivers
        assert info(Codec.VP8, bytes([0x18]) + VP8_KEY_HEADER) == KEY

    def test_non_reference_frame_is_droppable(self):
        # §4.2: N=1 — the frame can be discarded without affecting any other frame
        assert info(Codec.VP8, bytes([0x30]) + VP8_INTER_HEADER) == DROPPABLE_START
        assert info(Codec.VP8, bytes([0x20, 0xAA])) == DROPPABLE_MIDDLE

    def test_n_bit_on_a_key_frame_is_not_droppable(self):
        assert info(Codec.VP8, bytes([0x30]) + VP8_KEY_HEADER) == KEY

    def test_extension_with_7_bit_picture_id(self):
        # §4.2: X=1, then |I=1|L|T|K|RSV|, then |M=0| PictureID (7)|
        assert info(Codec.VP8, bytes([0x90, 0x80, 0x05]) + VP8_KEY_HEADER) == KEY

    def test_extension_with_15_bit_picture_id(self):
        # §4.2: M=1 — the picture id takes a second byte
        assert info(Codec.VP8, bytes([0x90, 0x80, 0x81, 0x23]) + VP8_INTER_HEADER) == START
        # a key frame after the same descriptor: the 15-bit id must be skipped to find P=0
        assert info(Codec.VP8, bytes([0x90, 0x80, 0x81, 0x23]) + VP8_KEY_HEADER) == KEY

    def test_extension_all_fields(self):
        # §4.2: I (15-bit), L (TL0PICIDX), T and K (one shared byte): TID=2, Y=1, KEYIDX=3
        descriptor = bytes([0x90, 0xF0, 0x80, 0x01, 0x07, 0b10_1_00011])
        got = info(Codec.VP8, descriptor + VP8_KEY_HEADER)
        assert got == FrameInfo(True, True, True, False, temporal_id=2)

    def test_temporal_layer_non_reference(self):
        # §4.2: T=1, TID=2 on a frame with N=1 (the top layer of L1T3 in libvpx)
        got = info(Codec.VP8, bytes([0xB0, 0x20, 0x80]) + VP8_INTER_HEADER)
        assert got == FrameInfo(False, True, False, True, temporal_id=2)

    def test_k_without_t_has_no_temporal_id(self):
        got = info(Codec.VP8, bytes([0x90, 0x10, 0x1F]) + VP8_INTER_HEADER)
        assert got == START and got.temporal_id is None

    def test_l_only(self):
        assert info(Codec.VP8, bytes([0x90, 0x40, 0x09]) + VP8_KEY_HEADER) == KEY

    @pytest.mark.parametrize("payload, message", [
        (b"", "VP8 payload is empty"),
        (bytes([0x90]), "X is set but the extension byte is missing"),
        (bytes([0x90, 0x80]), "I is set but the picture id is missing"),
        (bytes([0x90, 0x80, 0x80]), "M is set but the second picture id byte is missing"),
        (bytes([0x90, 0x40]), "L is set but TL0PICIDX is missing"),
        (bytes([0x90, 0x20]), "T or K is set but the TID/KEYIDX byte is missing"),
        (bytes([0x90, 0x10]), "T or K is set"),
        (bytes([0x90, 0xF0, 0x80, 0x01, 0x07]), "T or K is set"),
        (bytes([0x10]), "VP8 payload has no data after the 1-byte descriptor"),
        (bytes([0x90, 0x80, 0x05]), "no data after the 3-byte descriptor"),
    ])
    def test_truncated_descriptor(self, payload, message):
        # §4.2: every field announced by a flag must be present, and a payload must follow
        with pytest.raises(PayloadError, match=message):
            info(Codec.VP8, payload)

    def test_truncated_key_frame_header(self):
        # RFC 6386 §9.1 / libwebrtc: a key frame's first packet carries the 10-byte header
        with pytest.raises(PayloadError, match="VP8 key frame header truncated: need 10 bytes, got 9"):
            info(Codec.VP8, bytes([0x10]) + VP8_KEY_HEADER[:9])

    def test_bad_start_code(self):
        with pytest.raises(PayloadError, match="start code must be 9d 01 2a, got 9d 01 2b"):
            info(Codec.VP8, bytes([0x10]) + VP8_KEY_HEADER[:5] + b"\x2b" + VP8_KEY_HEADER[6:])


# ----- VP9: RFC 9628 §4.2 -------------------------------------------------------------------------

class TestVp9:
    def test_key_frame_minimal(self):
        # |I=0|P=0|L=0|F=0|B=1|E=1|V=0|Z=0|
        assert info(Codec.VP9, bytes([0x0C, 0x82])) == KEY

    def test_inter_frame_start(self):
        # P=1, B=1
        assert info(Codec.VP9, bytes([0x48, 0x00])) == START

    def test_middle_packet_of_a_key_frame(self):
        # P=0 but B=0: not the start, so not reported as a key frame
        assert info(Codec.VP9, bytes([0x00, 0x00])) == MIDDLE

    def test_end_packet(self):
        # P=1, E=1
        assert info(Codec.VP9, bytes([0x44, 0xFF])) == MIDDLE

    def test_picture_id_7_and_15_bits(self):
        # I=1, M=0 / M=1
        assert info(Codec.VP9, bytes([0x88, 0x12, 0x00])) == KEY
        assert info(Codec.VP9, bytes([0x88, 0x92, 0x34, 0x00])) == KEY

    def test_non_flexible_layer_indices_with_tl0picidx(self):
        # L=1, F=0: |TID=1|U=0|SID=0|D=0| then TL0PICIDX
        got = info(Codec.VP9, bytes([0xE8, 0x81, 0x01, 0x20, 0x07, 0x00]))
        assert got == FrameInfo(False, True, False, False, temporal_id=1, spatial_id=0)

    def test_key_frame_needs_spatial_layer_0(self):
        # P=0, B=1 with L: SID=0 is a key frame, SID=1 (inter-layer predicted) is not
        base = info(Codec.VP9, bytes([0xA8, 0x05, 0b000_0_000_0, 0x00, 0x00]))
        upper = info(Codec.VP9, bytes([0xA8, 0x05, 0b000_0_001_1, 0x00, 0x00]))
        assert base == FrameInfo(True, True, True, False, temporal_id=0, spatial_id=0)
        assert upper == FrameInfo(False, True, False, False, temporal_id=0, spatial_id=1)

    def test_flexible_mode_layer_indices_have_no_tl0picidx(self):
        # F=1, L=1: only the layer byte; the next byte (0x00) is payload
        got = info(Codec.VP9, bytes([0xB8, 0x05, 0b010_1_000_0, 0x00]))
        assert got == FrameInfo(True, True, True, False, temporal_id=2, spatial_id=0)

    def test_flexible_mode_reference_indices(self):
        # F=1, P=1: P_DIFF bytes, N=1 means another follows (up to 3)
        one = bytes([0xD8, 0x05, 0x02])
        three = bytes([0xD8, 0x05, 0x03, 0x05, 0x06])
        assert info(Codec.VP9, one + b"\x00") == START
        assert info(Codec.VP9, three + b"\x00") == START

    def test_z_bit_is_not_droppable(self):
        # Z: not a reference for *upper spatial layers* only; temporal references unknown
        assert info(Codec.VP9, bytes([0x49, 0x00])).droppable is False

    def test_scalability_structure(self):
        # V=1: |N_S=1|Y=1|G=1|-|-|-|, 2 x (width, height), N_G=2,
        # picture 1 |T=0|U=0|R=1|-|-| + 1 P_DIFF, picture 2 |T=1|U=1|R=0|
        ss = bytes([0b001_1_1_000, 0x01, 0x40, 0x00, 0xB4, 0x02, 0x80, 0x01, 0x68,
                    0x02, 0b000_0_01_00, 0x01, 0b001_1_00_00])
        assert info(Codec.VP9, bytes([0x8E, 0x05]) + ss + b"\x00") == KEY

    def test_scalability_structure_without_y_or_g(self):
        assert info(Codec.VP9, bytes([0x0E, 0b010_0_0_000, 0xAB])) == KEY

    @pytest.mark.parametrize("payload, message", [
        (b"", "VP9 payload is empty"),
        (bytes([0x88]), "I is set but the picture id is missing"),
        (bytes([0x88, 0x80]), "M is set but the second picture id byte is missing"),
        (bytes([0x28]), "L is set but the layer indices are missing"),
        (bytes([0x28, 0x00]), "non-flexible mode but TL0PICIDX is missing"),
        (bytes([0xD8, 0x05]), "P_DIFF 1 is missing"),
        (bytes([0xD8, 0x05, 0x03]), "P_DIFF 2 is missing"),
        (bytes([0xD8, 0x05, 0x03, 0x03, 0x03, 0x00]), "more than 3 P_DIFF"),
        (bytes([0x58, 0x02, 0x00]), "P_DIFF present .* without a picture id"),
        (bytes([0x0A]), "the N_S|Y|G byte is missing"),
        (bytes([0x0A, 0b001_1_0_000, 1, 2, 3, 4, 5, 6, 7]), "2 resolutions need 8 bytes, 7 left"),
        (bytes([0x0A, 0b000_0_1_000]), "G is set but N_G is missing"),
        (bytes([0x0A, 0b000_0_1_000, 0x02, 0x00]), "picture 2 of 2 is missing"),
        (bytes([0x0A, 0b000_0_1_000, 0x01, 0b000_0_10_00, 0x01]), "picture 1 of 1 needs 2 P_DIFF bytes"),
        (bytes([0x0C]), "VP9 payload has no data after the 1-byte descriptor"),
    ])
    def test_truncated_or_invalid_descriptor(self, payload, message):
        with pytest.raises(PayloadError, match=message):
            info(Codec.VP9, payload)


# ----- H.264: RFC 6184 ----------------------------------------------------------------------------

class TestH264:
    # §5.3 NAL unit header |F|NRI|Type|
    @pytest.mark.parametrize("head, expected", [
        (0x65, KEY),               # NRI=3, type 5: IDR slice
        (0x67, KEY),               # type 7: SPS (an IDR follows)
        (0x68, KEY),               # type 8: PPS
        (0x41, START),             # NRI=2, type 1: non-IDR slice, referenced
        (0x01, DROPPABLE_START),   # NRI=0, type 1: nal_ref_idc 0, nothing references it
        (0x06, DROPPABLE_START),   # NRI=0, type 6: SEI
        (0x09, DROPPABLE_START),   # type 9: access unit delimiter
    ])
    def test_single_nal_unit(self, head, expected):
        # §5.6: single NAL unit packet, types 1-23
        assert info(Codec.H264, bytes([head, 0x88, 0x84])) == expected

    def test_single_nal_header_only(self):
        assert info(Codec.H264, bytes([0x41])) == START

    def test_stap_a_sps_pps_idr(self):
        # §5.7.1: STAP-A header (type 24), then (16-bit size, NAL unit) x 3
        payload = bytes([0x78,
                         0x00, 0x04, 0x67, 0x42, 0xC0, 0x1F,  # SPS
                         0x00, 0x02, 0x68, 0xCE,              # PPS
                         0x00, 0x03, 0x65, 0x88, 0x80])       # IDR
        assert info(Codec.H264, payload) == KEY

    def test_stap_a_sps_alone_is_a_key_frame_start(self):
        assert info(Codec.H264, bytes([0x78, 0x00, 0x02, 0x67, 0x42])) == KEY

    def test_stap_a_non_key(self):
        assert info(Codec.H264, bytes([0x58, 0x00, 0x02, 0x06, 0x05, 0x00, 0x02, 0x41, 0x9A])) == START

    def test_stap_a_all_nri_zero_is_droppable(self):
        assert info(Codec.H264, bytes([0x18, 0x00, 0x02, 0x06, 0x05, 0x00, 0x02, 0x01, 0x9A])) == DROPPABLE_START

    def test_fu_a_start_of_idr(self):
        # §5.8: FU indicator (NRI=3, type 28), FU header |S=1|E=0|R=0|Type=5|
        assert info(Codec.H264, bytes([0x7C, 0x85, 0xB8, 0x00])) == KEY

    def test_fu_a_middle_and_end_of_idr(self):
        assert info(Codec.H264, bytes([0x7C, 0x05, 0x11])) == MIDDLE
        assert info(Codec.H264, bytes([0x7C, 0x45, 0x22])) == MIDDLE

    def test_fu_a_start_of_non_idr(self):
        assert info(Codec.H264, bytes([0x5C, 0x81, 0x9A])) == START

    def test_fu_a_nri_zero_is_droppable(self):
        assert info(Codec.H264, bytes([0x1C, 0x81, 0x9A])) == DROPPABLE_START
        assert info(Codec.H264, bytes([0x1C, 0x41, 0x9A])) == DROPPABLE_MIDDLE

    @pytest.mark.parametrize("payload, message", [
        (b"", "H.264 payload is empty"),
        (bytes([0x60]), "NAL unit type 0 is undefined"),
        (bytes([0x7E, 0x00]), "NAL unit type 30 is undefined"),
        (bytes([0x7F]), "NAL unit type 31 is undefined"),
        (bytes([0x79, 0x00]), "STAP-B \\(type 25\\) needs interleaved mode"),
        (bytes([0x7A, 0x00]), "MTAP16 \\(type 26\\)"),
        (bytes([0x7B, 0x00]), "MTAP24 \\(type 27\\)"),
        (bytes([0x7D, 0x85, 0x00]), "FU-B \\(type 29\\)"),
        (bytes([0x78]), "STAP-A has no NAL units"),
        (bytes([0x78, 0x00]), "STAP-A truncated: size of NAL unit 1 is cut off"),
        (bytes([0x78, 0x00, 0x05, 0x67, 0x42]), "STAP-A truncated: NAL unit 1 needs 5 bytes, 2 left"),
        (bytes([0x78, 0x00, 0x01, 0x67, 0x00]), "size of NAL unit 2 is cut off"),
        (bytes([0x78, 0x00, 0x00]), "NAL unit 1 has size 0"),
        (bytes([0x78, 0x00, 0x01, 0x7C]), "NAL unit 1 has type 28, only 1-23 can be aggregated"),
        (bytes([0x7C]), "FU-A truncated: the FU header is missing"),
        (bytes([0x7C, 0xC5, 0x00]), "start and end bits both set"),
        (bytes([0x7C, 0x98, 0x00]), "fragmented NAL unit type 24, must be 1-23"),
        (bytes([0x7C, 0x80, 0x00]), "fragmented NAL unit type 0"),
    ])
    def test_invalid(self, payload, message):
        with pytest.raises(PayloadError, match=message):
            info(Codec.H264, payload)


# ----- AV1: RTP payload format §4.4 ----------------------------------------------------------------

class TestAv1:
    def test_new_coded_video_sequence_is_a_key_frame(self):
        # |Z=0|Y=0|W=2|N=1|: a sized sequence header OBU, then the frame OBU to the end
        payload = bytes([0x28, 0x03, 0x0A, 0x0B, 0x0C, 0x32, 0x00, 0x01])
        assert info(Codec.AV1, payload) == KEY

    def test_delta_frame_start(self):
        # W=1: one OBU element without a size field
        assert info(Codec.AV1, bytes([0x10, 0x32, 0x10, 0x00])) == START

    def test_continuation_is_not_a_start(self):
        # Z=1, Y=1: middle fragment of an OBU
        assert info(Codec.AV1, bytes([0xD0, 0xAA, 0xBB])) == MIDDLE

    def test_w0_every_element_sized(self):
        # W=0: each element carries a leb128 size; a 2-byte leb128 (130 = 0x82 0x01)
        payload = bytes([0x00, 0x01, 0x12, 0x82, 0x01]) + bytes(130)
        assert info(Codec.AV1, payload) == START

    def test_w1_aggregation_header_only_is_one_empty_element(self):
        assert info(Codec.AV1, bytes([0x90])) == MIDDLE

    @pytest.mark.parametrize("payload, message", [
        (b"", "aggregation header is missing"),
        (bytes([0x88, 0x00]), "N \\(new coded video sequence\\) with Z"),
        (bytes([0x00]), "AV1 payload has no OBU elements"),
        (bytes([0x00, 0x05, 0x01]), "element 1 truncated: needs 5 bytes, 1 left"),
        (bytes([0x00, 0x01, 0x12, 0x80]), "element 2 truncated: its leb128 size is cut off"),
        (bytes([0x00]) + bytes([0x80] * 8) + b"\x00", "leb128 size longer than 8 bytes"),
        (bytes([0x30]), "W=3 OBU elements, element 1 is missing"),
        (bytes([0x30, 0x01, 0x00]), "W=3 OBU elements, element 2 is missing"),
    ])
    def test_invalid(self, payload, message):
        with pytest.raises(PayloadError, match=message):
            info(Codec.AV1, payload)


# ----- Opus: RFC 7587 / RFC 6716 ---------------------------------------------------------------------

def test_opus_every_packet_is_a_frame():
    assert info(Codec.OPUS, bytes([0x78, 0x01, 0x02])) == KEY
    assert info(Codec.OPUS, bytes([0xFC])) == KEY  # TOC only (a DTX frame)


def test_opus_empty_is_an_error():
    with pytest.raises(PayloadError, match="Opus payload is empty"):
        info(Codec.OPUS, b"")


# ----- input types and the Codec enum ---------------------------------------------------------------

def test_memoryview_and_bytearray_inputs():
    packet = bytearray(b"\x00" * 12 + bytes([0x10]) + VP8_KEY_HEADER)
    assert info(Codec.VP8, memoryview(packet)[12:]) == KEY
    assert info(Codec.VP8, packet[12:]) == KEY


def test_codec_from_sdp_name():
    assert Codec.from_name("h264") is Codec.H264
    assert Codec.from_name("OPUS") is Codec.OPUS
    assert Codec.from_name("av1") is Codec.AV1
    assert Codec.OPUS.clock_rate == 48000 and Codec.VP8.clock_rate == 90000
    assert not Codec.OPUS.is_video and Codec.VP9.is_video
    with pytest.raises(ValueError, match="unsupported codec 'H265'"):
        Codec.from_name("H265")


def test_not_a_codec():
    with pytest.raises(TypeError):
        inspect_payload("VP8", b"\x10")


def test_payload_error_is_a_value_error():
    assert issubclass(PayloadError, ValueError)


# ----- fuzz: any bytes give a FrameInfo or a PayloadError ---------------------------------------------

@settings(max_examples=300)
@given(codec=st.sampled_from(list(Codec)), payload=st.binary(max_size=64))
def test_arbitrary_bytes_only_raise_payload_error(codec, payload):
    try:
        got = inspect_payload(codec, payload)
    except PayloadError:
        return
    assert isinstance(got, FrameInfo)
    assert got.decodable_alone == got.keyframe
    assert not (got.keyframe and not got.frame_start)
    assert not (got.keyframe and got.droppable)


@settings(max_examples=200)
@given(codec=st.sampled_from(list(Codec)), first=st.integers(0, 255), rest=st.binary(max_size=24))
def test_arbitrary_bytes_after_each_header_byte(codec, first, rest):
    # every first byte (all flag combinations) with short tails, to reach each truncation check
    try:
        inspect_payload(codec, memoryview(bytes([first]) + rest))
    except PayloadError:
        pass
