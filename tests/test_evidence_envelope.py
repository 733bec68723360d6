"""Tests for chatguard.evidence.envelope (DSSE v1)."""

from __future__ import annotations

import base64
import contextlib
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from chatguard.evidence.envelope import (
    EVIDENCE_PAYLOAD_TYPE,
    Envelope,
    EnvelopeError,
    Signature,
    pae,
    sign,
    verify,
)
from chatguard.evidence.keys import Keyring, Signer

SIGNER = Signer.from_seed("chatguard.example/log", bytes(range(32)))
OTHER = Signer.from_seed("chatguard.example/log", bytes(range(1, 33)))
KEYRING = Keyring.of(SIGNER)
RECORD = b'{"kind":"message","text":"hi there"}'


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# --- PAE ----------------------------------------------------------------------


def test_pae_matches_the_dsse_spec_example() -> None:
    assert (
        pae("http://example.com/HelloWorld", b"hello world")
        == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


@pytest.mark.parametrize(
    ("payload_type", "payload", "expected"),
    [
        ("t", b"", b"DSSEv1 1 t 0 "),
        ("", b"x", b"DSSEv1 0  1 x"),
        # Lengths count bytes, not characters.
        ("\u00e9", b"\x00\xff", b"DSSEv1 2 \xc3\xa9 2 \x00\xff"),
        ("a", b"0123456789", b"DSSEv1 1 a 10 0123456789"),
    ],
)
def test_pae_lengths_are_byte_counts(payload_type: str, payload: bytes, expected: bytes) -> None:
    assert pae(payload_type, payload) == expected


# --- Signing and verifying ----------------------------------------------------


def test_signature_is_plain_ed25519_over_pae() -> None:
    envelope = sign(EVIDENCE_PAYLOAD_TYPE, RECORD, SIGNER)
    (signature,) = envelope.signatures
    assert signature.keyid == SIGNER.key_id
    # Checked with the library directly, not through our verify().
    message = b"DSSEv1 39 application/vnd.chatguard.evidence+json 36 " + RECORD
    Ed25519PublicKey.from_public_bytes(SIGNER.public_key).verify(signature.sig, message)


def test_verify_reports_the_key() -> None:
    envelope = sign(EVIDENCE_PAYLOAD_TYPE, RECORD, SIGNER)
    result = verify(envelope, KEYRING, payload_type=EVIDENCE_PAYLOAD_TYPE)
    assert result
    assert result.ok
    assert result.key_id == SIGNER.key_id


def test_verify_uses_the_exact_payload_bytes() -> None:
    # Same JSON value, different bytes: a verifier that re-serialised would
    # accept both or neither. Ours accepts exactly the signed spelling.
    signed = sign(EVIDENCE_PAYLOAD_TYPE, b'{"b": 1, "a": 2}', SIGNER)
    assert verify(signed, KEYRING)
    respelled = Envelope(signed.payload_type, b'{"a":2,"b":1}', signed.signatures)
    assert not verify(respelled, KEYRING)


def test_unknown_key_is_rejected_with_a_reason() -> None:
    envelope = sign(EVIDENCE_PAYLOAD_TYPE, RECORD, OTHER)
    result = verify(envelope, KEYRING)
    assert not result
    assert result.key_id is None
    assert "known key" in result.reason
    assert OTHER.key_id in result.reason


def test_wrong_payload_type_is_rejected() -> None:
    envelope = sign("application/json", RECORD, SIGNER)
    assert verify(envelope, KEYRING)
    result = verify(envelope, KEYRING, payload_type=EVIDENCE_PAYLOAD_TYPE)
    assert not result
    assert "payload type" in result.reason


def test_keyid_narrows_the_keys_tried() -> None:
    good = sign(EVIDENCE_PAYLOAD_TYPE, RECORD, SIGNER).signatures[0]
    both = Keyring.of(SIGNER, [OTHER.verifier])
    # A keyid naming another known key: not retried against the right key.
    misnamed = Envelope(EVIDENCE_PAYLOAD_TYPE, RECORD, (Signature(OTHER.key_id, good.sig),))
    assert not verify(misnamed, both)
    # No keyid at all: every key is tried.
    anonymous = Envelope(EVIDENCE_PAYLOAD_TYPE, RECORD, (Signature("", good.sig),))
    assert verify(anonymous, both).key_id == SIGNER.key_id


def test_one_good_signature_among_several_is_enough() -> None:
    good = sign(EVIDENCE_PAYLOAD_TYPE, RECORD, SIGNER).signatures[0]
    stranger = sign(EVIDENCE_PAYLOAD_TYPE, RECORD, OTHER).signatures[0]
    envelope = Envelope(EVIDENCE_PAYLOAD_TYPE, RECORD, (stranger, good))
    assert verify(envelope, KEYRING).key_id == SIGNER.key_id


def test_verify_only_keyring() -> None:
    envelope = sign(EVIDENCE_PAYLOAD_TYPE, RECORD, SIGNER)
    assert verify(envelope, Keyring.public([SIGNER.verifier]))


@pytest.mark.parametrize("sig", [b"", b"\x00" * 63, b"\x00" * 65, b"\xff" * 64])
def test_garbage_signatures_fail_without_raising(sig: bytes) -> None:
    envelope = Envelope(EVIDENCE_PAYLOAD_TYPE, RECORD, (Signature(SIGNER.key_id, sig),))
    assert not verify(envelope, KEYRING)


# --- JSON ---------------------------------------------------------------------


def test_canonical_json_shape() -> None:
    envelope = sign(EVIDENCE_PAYLOAD_TYPE, RECORD, SIGNER)
    sig = envelope.signatures[0].sig
    assert envelope.to_json() == (
        b'{"payload":"' + b64(RECORD).encode() + b'",'
        b'"payloadType":"application/vnd.chatguard.evidence+json",'
        b'"signatures":[{"keyid":"' + SIGNER.key_id.encode() + b'",'
        b'"sig":"' + b64(sig).encode() + b'"}]}'
    )
    # And it is ordinary DSSE JSON to any JSON reader.
    doc = json.loads(envelope.to_json())
    assert base64.b64decode(doc["payload"]) == RECORD
    assert doc["signatures"][0]["keyid"] == SIGNER.key_id


def test_empty_keyid_is_omitted() -> None:
    envelope = Envelope("t/x", b"", (Signature("", b"\x01\x02"),))
    assert envelope.to_json() == b'{"payload":"","payloadType":"t/x","signatures":[{"sig":"AQI="}]}'
    assert Envelope.from_json(envelope.to_json()) == envelope


def test_round_trip() -> None:
    envelope = sign(EVIDENCE_PAYLOAD_TYPE, RECORD, SIGNER)
    assert Envelope.from_json(envelope.to_json()) == envelope


GOOD_JSON = sign(EVIDENCE_PAYLOAD_TYPE, RECORD, SIGNER).to_json()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not valid JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[]", "must be a JSON object"),
        (b"[" * 100_000, "not valid JSON"),
        (GOOD_JSON + b" ", "canonical"),
        (GOOD_JSON.replace(b'":', b'": '), "canonical"),
        (GOOD_JSON + b"{}", "not valid JSON"),
        (b'{"payload":"","payload":"","payloadType":"t","signatures":[]}', "duplicate"),
        (b'{"payloadType":"t","signatures":[{"sig":""}]}', "missing payload"),
        (b'{"payload":"","payloadType":"t","signatures":[{"sig":""}],"x":1}', "unknown"),
        (b'{"payload":"","payloadType":"t","signatures":[]}', "non-empty"),
        (b'{"payload":"","payloadType":"t","signatures":{}}', "non-empty"),
        (b'{"payload":"","payloadType":"t","signatures":[7]}', "must be an object"),
        (b'{"payload":"","payloadType":"t","signatures":[{"keyid":"k"}]}', "missing sig"),
        (b'{"payload":"","payloadType":"t","signatures":[{"sig":"","alg":"x"}]}', "unknown"),
        (b'{"payload":"","payloadType":7,"signatures":[{"sig":""}]}', "must be a string"),
        (b'{"payload":"","payloadType":"","signatures":[{"sig":""}]}', "payloadType"),
        (b'{"payload":"","payloadType":"a b","signatures":[{"sig":""}]}', "payloadType"),
        (b'{"payload":NaN,"payloadType":"t","signatures":[{"sig":""}]}', "NaN"),
        (b'{"payload":"AQI","payloadType":"t","signatures":[{"sig":""}]}', "base64"),
        (b'{"payload":"AQJ=","payloadType":"t","signatures":[{"sig":""}]}', "canonical"),
        (b'{"payload":"-_8=","payloadType":"t","signatures":[{"sig":""}]}', "base64"),
        (b'{"payload":"","payloadType":"t","signatures":[{"sig":"A Q=="}]}', "base64"),
        (b'{"payload":"","payloadType":"t","signatures":[{"keyid":1,"sig":""}]}', "string"),
    ],
)
def test_strict_parsing(data: bytes, message: str) -> None:
    with pytest.raises(EnvelopeError, match=message):
        Envelope.from_json(data)


def test_lenient_parsing_accepts_any_dsse_envelope() -> None:
    # The example envelope from the DSSE protocol document (an ECDSA
    # signature, so it is parsed here, not verified).
    example = (
        b'{"payload": "aGVsbG8gd29ybGQ=",\n'
        b' "payloadType": "http://example.com/HelloWorld",\n'
        b' "signatures": [{"sig": "A3JqsQGtVsJ2O2xqrI5IcnXip5GToJ3F+FnZ+O88SjtR6rDAajabZKciJTfUiH'
        b'qJPcIAriEGAHTVeCUjW2JIZA=="}]}'
    )
    with pytest.raises(EnvelopeError, match="canonical"):
        Envelope.from_json(example)
    envelope = Envelope.from_json(example, canonical=False)
    assert envelope.payload == b"hello world"
    assert envelope.payload_type == "http://example.com/HelloWorld"
    assert len(envelope.signatures[0].sig) == 64
    # URL-safe and unpadded base64, as DSSE verifiers must accept.
    url_safe = b'{"signatures":[{"sig":"-_8"}],"payloadType":"t","payload":"-_8"}'
    assert Envelope.from_json(url_safe, canonical=False).payload == b"\xfb\xff"
    with pytest.raises(EnvelopeError, match="mixes"):
        Envelope.from_json(
            b'{"signatures":[{"sig":"+_8="}],"payloadType":"t","payload":""}', canonical=False
        )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"payload_type": "", "payload": b"", "signatures": (Signature("", b""),)}, "payloadType"),
        (
            {"payload_type": 't"', "payload": b"", "signatures": (Signature("", b""),)},
            "payloadType",
        ),
        ({"payload_type": "t", "payload": "s", "signatures": (Signature("", b""),)}, "bytes"),
        ({"payload_type": "t", "payload": b"", "signatures": ()}, "at least one"),
        ({"payload_type": "t", "payload": b"", "signatures": [Signature("", b"")]}, "tuple"),
    ],
)
def test_envelope_construction_is_checked(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(EnvelopeError, match=message):
        Envelope(**kwargs)  # type: ignore[arg-type]


def test_signature_construction_is_checked() -> None:
    with pytest.raises(EnvelopeError, match="keyid"):
        Signature("a\\b", b"")
    with pytest.raises(EnvelopeError, match="bytes"):
        Signature("k", "sig")  # type: ignore[arg-type]


# --- Tampering ----------------------------------------------------------------


@settings(max_examples=200)
@given(payload=st.binary(max_size=200), bit=st.integers(min_value=0))
def test_any_flipped_bit_in_the_stored_json_is_detected(payload: bytes, bit: int) -> None:
    stored = sign(EVIDENCE_PAYLOAD_TYPE, payload, SIGNER).to_json()
    bit %= len(stored) * 8
    tampered = bytearray(stored)
    tampered[bit // 8] ^= 1 << (bit % 8)
    try:
        envelope = Envelope.from_json(bytes(tampered))
    except EnvelopeError:
        return
    assert not verify(envelope, KEYRING, payload_type=EVIDENCE_PAYLOAD_TYPE)


@settings(max_examples=200)
@given(
    payload=st.binary(max_size=200),
    where=st.sampled_from(["payload", "sig"]),
    bit=st.integers(min_value=0),
)
def test_any_flipped_bit_in_payload_or_signature_fails(
    payload: bytes, where: str, bit: int
) -> None:
    envelope = sign(EVIDENCE_PAYLOAD_TYPE, payload, SIGNER)
    (signature,) = envelope.signatures
    if where == "payload":
        if not payload:
            return
        bit %= len(payload) * 8
        changed = bytearray(payload)
        changed[bit // 8] ^= 1 << (bit % 8)
        envelope = Envelope(envelope.payload_type, bytes(changed), envelope.signatures)
    else:
        bit %= 64 * 8
        sig = bytearray(signature.sig)
        sig[bit // 8] ^= 1 << (bit % 8)
        envelope = Envelope(
            envelope.payload_type, payload, (Signature(signature.keyid, bytes(sig)),)
        )
    assert not verify(envelope, KEYRING)


@settings(max_examples=200)
@given(data=st.binary(max_size=300))
def test_parser_never_raises_anything_but_envelope_error(data: bytes) -> None:
    with contextlib.suppress(EnvelopeError):
        Envelope.from_json(data)


@settings(max_examples=100)
@given(
    doc=st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=8),
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(
                st.sampled_from(["payload", "payloadType", "signatures", "keyid", "sig"]),
                children,
                max_size=4,
            )
        ),
        max_leaves=12,
    )
)
def test_parser_rejects_structurally_wrong_json_cleanly(doc: object) -> None:
    for canonical in (True, False):
        with contextlib.suppress(EnvelopeError):
            Envelope.from_json(json.dumps(doc).encode(), canonical=canonical)
