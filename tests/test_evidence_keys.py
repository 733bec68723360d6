"""Tests for chatguard.evidence.keys: keys, keyrings, and the on-disk keyring."""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import stat

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from chatguard.evidence.checkpoint import Checkpoint, open_note, sign_note
from chatguard.evidence.envelope import EVIDENCE_PAYLOAD_TYPE, sign, verify
from chatguard.evidence.keys import (
    Keyring,
    KeyringError,
    Signer,
    Verifier,
    key_id_for,
    load_or_create_keyring,
    public_from_pem,
    public_to_pem,
    rotate,
    signer_from_pem,
    signer_to_pem,
)
from chatguard.evidence.merkle import EMPTY_ROOT

NAME = "chatguard.example/log"

# RFC 8032 §7.1, TEST 1.
RFC8032_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC8032_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
RFC8032_SIG_OF_EMPTY = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)


def test_rfc8032_vector() -> None:
    signer = Signer.from_seed(NAME, RFC8032_SEED)
    assert signer.public_key == RFC8032_PUBLIC
    assert signer.sign(b"") == RFC8032_SIG_OF_EMPTY
    assert signer.verifier.verify(b"", RFC8032_SIG_OF_EMPTY)
    assert signer.seed() == RFC8032_SEED


def test_key_id_is_the_sha256_fingerprint_of_the_raw_public_key() -> None:
    signer = Signer.from_seed(NAME, RFC8032_SEED)
    expected = hashlib.sha256(RFC8032_PUBLIC).hexdigest()
    assert signer.key_id == signer.verifier.key_id == key_id_for(RFC8032_PUBLIC) == expected
    # The name is not part of the key id.
    assert Signer.from_seed("other", RFC8032_SEED).key_id == expected


def test_verifier_rejects_bad_signatures_without_raising() -> None:
    verifier = Signer.from_seed(NAME, RFC8032_SEED).verifier
    assert not verifier.verify(b"x", RFC8032_SIG_OF_EMPTY)
    assert not verifier.verify(b"", RFC8032_SIG_OF_EMPTY[:-1])
    assert not verifier.verify(b"", b"\xff" * 64)
    assert not verifier.verify(b"", "not bytes")  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["", "a b", "a+b", "tab\there", "nl\n", "nbsp\u00a0"])
def test_key_names_follow_the_signed_note_rules(name: str) -> None:
    with pytest.raises(KeyringError, match="invalid key name"):
        Signer.generate(name)
    with pytest.raises(KeyringError, match="invalid key name"):
        Verifier(name, RFC8032_PUBLIC)


def test_bad_key_material() -> None:
    with pytest.raises(KeyringError, match="32 raw bytes"):
        Verifier(NAME, RFC8032_PUBLIC[:31])
    with pytest.raises(KeyringError, match="32 bytes"):
        Signer.from_seed(NAME, b"short")


def test_signer_keeps_its_secret_out_of_repr_and_equality() -> None:
    a = Signer.from_seed(NAME, RFC8032_SEED)
    b = Signer.from_seed(NAME, RFC8032_SEED)
    assert RFC8032_SEED.hex() not in repr(a)
    assert a.key_id in repr(a)
    assert a != b
    assert a.verifier == b.verifier


def test_generated_keys_differ() -> None:
    assert Signer.generate(NAME).key_id != Signer.generate(NAME).key_id


# --- PEM ----------------------------------------------------------------------


def test_pem_round_trips() -> None:
    signer = Signer.generate(NAME)
    pem = signer_to_pem(signer)
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert signer_from_pem(pem, NAME).public_key == signer.public_key
    public = public_to_pem(signer.verifier)
    assert public.startswith(b"-----BEGIN PUBLIC KEY-----")
    assert public_from_pem(public, NAME) == signer.verifier


def test_pem_is_what_openssl_would_read() -> None:
    signer = Signer.from_seed(NAME, RFC8032_SEED)
    loaded = serialization.load_pem_public_key(public_to_pem(signer.verifier))
    raw = loaded.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert raw == RFC8032_PUBLIC


def test_pem_of_the_wrong_kind_is_rejected() -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ec_pem = ec_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(KeyringError, match="expected an Ed25519 private key"):
        signer_from_pem(ec_pem, NAME)
    ec_public = ec_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(KeyringError, match="expected an Ed25519 public key"):
        public_from_pem(ec_public, NAME)
    with pytest.raises(KeyringError, match="not an unencrypted PEM private key"):
        signer_from_pem(b"garbage", NAME)
    with pytest.raises(KeyringError, match="not a PEM public key"):
        public_from_pem(b"garbage", NAME)
    encrypted = Signer.generate(NAME)._key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    with pytest.raises(KeyringError, match="not an unencrypted PEM private key"):
        signer_from_pem(encrypted, NAME)


# --- Keyring --------------------------------------------------------------------


def test_keyring_lookup() -> None:
    active = Signer.generate(NAME)
    old = Signer.generate(NAME).verifier
    keyring = Keyring.of(active, [old])
    assert keyring.signer is active
    assert keyring.get(old.key_id) == old
    assert active.key_id in keyring
    assert "nope" not in keyring
    assert keyring.get("nope") is None
    assert set(keyring) == {active.verifier, old}
    assert len(keyring) == 2


def test_verify_only_keyring_has_no_signer() -> None:
    keyring = Keyring.public([Signer.generate(NAME).verifier])
    assert keyring.active is None
    with pytest.raises(KeyringError, match="no active signing key"):
        _ = keyring.signer


def test_keyring_consistency_is_checked() -> None:
    signer = Signer.from_seed(NAME, RFC8032_SEED)
    renamed = Verifier("other", signer.public_key)
    with pytest.raises(KeyringError, match="twice"):
        Keyring.of(signer, [renamed])
    with pytest.raises(KeyringError, match="not in the keyring"):
        Keyring((Signer.generate(NAME).verifier,), signer)


# --- On disk --------------------------------------------------------------------


def mode(path: pathlib.Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_first_start_creates_a_private_keyring(tmp_path: pathlib.Path) -> None:
    keyring = load_or_create_keyring(tmp_path, NAME, now=1000.0)
    keys = tmp_path / "keys"
    assert mode(keys) == 0o700
    assert mode(keys / "retired") == 0o700
    assert mode(keys / "active.pem") == 0o600
    assert mode(keys / "keyring.json") == 0o600
    assert not list(keys.glob("*.tmp"))
    doc = json.loads((keys / "keyring.json").read_text())
    assert doc == {
        "version": 1,
        "active": keyring.signer.key_id,
        "keys": [
            {"key_id": keyring.signer.key_id, "name": NAME, "created": 1000.0, "retired": None}
        ],
    }
    assert keyring.signer.name == NAME
    assert len(keyring) == 1


def test_second_start_loads_the_same_key(tmp_path: pathlib.Path) -> None:
    first = load_or_create_keyring(tmp_path, NAME, now=1000.0)
    second = load_or_create_keyring(tmp_path, NAME, now=2000.0)
    assert second.signer.key_id == first.signer.key_id
    assert second.history == first.history


def test_a_different_name_is_refused(tmp_path: pathlib.Path) -> None:
    load_or_create_keyring(tmp_path, NAME, now=1000.0)
    with pytest.raises(KeyringError, match="rotate"):
        load_or_create_keyring(tmp_path, "other.example/log", now=2000.0)


def test_rotation_keeps_old_evidence_verifiable(tmp_path: pathlib.Path) -> None:
    before = load_or_create_keyring(tmp_path, NAME, now=1000.0)
    old_envelope = sign(EVIDENCE_PAYLOAD_TYPE, b'{"n":1}', before.signer)
    old_note = sign_note(Checkpoint(NAME, 0, EMPTY_ROOT).body(), before.signer)

    after = rotate(tmp_path, now=2000.0)
    assert after.signer.key_id != before.signer.key_id
    new_envelope = sign(EVIDENCE_PAYLOAD_TYPE, b'{"n":2}', after.signer)

    for keyring in (after, load_or_create_keyring(tmp_path, NAME, now=3000.0)):
        assert verify(old_envelope, keyring).key_id == before.signer.key_id
        assert verify(new_envelope, keyring).key_id == after.signer.key_id
        assert open_note(old_note, keyring).size == 0
    # The old keyring never trusted the new key.
    assert not verify(new_envelope, before)

    retired = tmp_path / "keys" / "retired" / f"{before.signer.key_id}.pub.pem"
    assert mode(retired) == 0o600
    assert public_from_pem(retired.read_bytes(), NAME) == before.signer.verifier
    # The old private key is gone from disk.
    active = signer_from_pem((tmp_path / "keys" / "active.pem").read_bytes(), NAME)
    assert active.key_id == after.signer.key_id
    assert [(r.key_id, r.created, r.retired) for r in after.history] == [
        (before.signer.key_id, 1000.0, 2000.0),
        (after.signer.key_id, 2000.0, None),
    ]


def test_repeated_rotation_and_renaming(tmp_path: pathlib.Path) -> None:
    first = load_or_create_keyring(tmp_path, NAME, now=1.0)
    second = rotate(tmp_path, now=2.0)
    third = rotate(tmp_path, now=3.0, name="renamed.example/log")
    assert third.signer.name == "renamed.example/log"
    assert len(third) == 3
    assert {v.key_id for v in third} == {
        first.signer.key_id,
        second.signer.key_id,
        third.signer.key_id,
    }
    # Retired keys keep the name they signed under.
    assert third.get(first.signer.key_id) == first.signer.verifier
    reloaded = load_or_create_keyring(tmp_path, "renamed.example/log", now=4.0)
    assert set(reloaded) == set(third)


def test_a_rotation_interrupted_before_keyring_json_is_completed(tmp_path: pathlib.Path) -> None:
    before = load_or_create_keyring(tmp_path, NAME, now=1.0)
    keys = tmp_path / "keys"
    # Replay rotate()'s first two writes, then "crash".
    new = Signer.generate(NAME)
    (keys / "retired" / f"{before.signer.key_id}.pub.pem").write_bytes(
        public_to_pem(before.signer.verifier)
    )
    (keys / "active.pem").write_bytes(signer_to_pem(new))

    recovered = load_or_create_keyring(tmp_path, NAME, now=5.0)
    assert recovered.signer.key_id == new.key_id
    assert recovered.get(before.signer.key_id) == before.signer.verifier
    assert [(r.key_id, r.retired) for r in recovered.history] == [
        (before.signer.key_id, 5.0),
        (new.key_id, None),
    ]
    doc = json.loads((keys / "keyring.json").read_text())
    assert doc["active"] == new.key_id


def test_a_replaced_active_key_without_its_predecessor_is_refused(tmp_path: pathlib.Path) -> None:
    load_or_create_keyring(tmp_path, NAME, now=1.0)
    (tmp_path / "keys" / "active.pem").write_bytes(signer_to_pem(Signer.generate(NAME)))
    with pytest.raises(KeyringError, match="does not hold the active key"):
        load_or_create_keyring(tmp_path, NAME, now=2.0)


def test_a_swapped_retired_key_is_detected(tmp_path: pathlib.Path) -> None:
    before = load_or_create_keyring(tmp_path, NAME, now=1.0)
    rotate(tmp_path, now=2.0)
    retired = tmp_path / "keys" / "retired" / f"{before.signer.key_id}.pub.pem"
    retired.write_bytes(public_to_pem(Signer.generate(NAME).verifier))
    with pytest.raises(KeyringError, match="holds key"):
        load_or_create_keyring(tmp_path, NAME, now=3.0)


def test_a_missing_retired_key_is_detected(tmp_path: pathlib.Path) -> None:
    before = load_or_create_keyring(tmp_path, NAME, now=1.0)
    rotate(tmp_path, now=2.0)
    (tmp_path / "keys" / "retired" / f"{before.signer.key_id}.pub.pem").unlink()
    with pytest.raises(KeyringError, match="missing"):
        load_or_create_keyring(tmp_path, NAME, now=3.0)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{", "not valid JSON"),
        (b"{}", "malformed"),
        (b'{"version": 2, "active": "x", "keys": []}', "unsupported version"),
        (b'{"version": 1, "active": "x", "keys": []}', "has no record"),
        (b'{"version": 1, "active": 7, "keys": []}', "key id string"),
        (
            b'{"version": 1, "active": "x", "keys": [{"key_id": "x", "name": "n", '
            b'"created": "yesterday", "retired": null}]}',
            "malformed",
        ),
    ],
)
def test_a_corrupt_keyring_json_is_refused(
    tmp_path: pathlib.Path, content: bytes, message: str
) -> None:
    load_or_create_keyring(tmp_path, NAME, now=1.0)
    (tmp_path / "keys" / "keyring.json").write_bytes(content)
    with pytest.raises(KeyringError, match=message):
        load_or_create_keyring(tmp_path, NAME, now=2.0)


def test_a_keyring_json_without_its_key_is_refused(tmp_path: pathlib.Path) -> None:
    load_or_create_keyring(tmp_path, NAME, now=1.0)
    (tmp_path / "keys" / "active.pem").unlink()
    with pytest.raises(KeyringError, match=r"active\.pem is missing"):
        load_or_create_keyring(tmp_path, NAME, now=2.0)


def test_files_are_private_even_under_a_permissive_umask(tmp_path: pathlib.Path) -> None:
    old = os.umask(0)
    try:
        load_or_create_keyring(tmp_path, NAME, now=1.0)
        rotate(tmp_path, now=2.0)
    finally:
        os.umask(old)
    for path in (tmp_path / "keys").rglob("*"):
        assert mode(path) == (0o700 if path.is_dir() else 0o600), path


def test_a_first_start_interrupted_before_keyring_json_is_completed(
    tmp_path: pathlib.Path,
) -> None:
    first = load_or_create_keyring(tmp_path, NAME, now=1.0)
    (tmp_path / "keys" / "keyring.json").unlink()
    again = load_or_create_keyring(tmp_path, NAME, now=2.0)
    assert again.signer.key_id == first.signer.key_id
    # But a keyring.json lost after a rotation is not silently re-created.
    rotate(tmp_path, now=3.0)
    (tmp_path / "keys" / "keyring.json").unlink()
    with pytest.raises(KeyringError, match="retired keys exist"):
        load_or_create_keyring(tmp_path, NAME, now=4.0)
