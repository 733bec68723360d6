"""Tests for chatguard.evidence.checkpoint (C2SP signed-note checkpoints).

Known answers come from Go's golang.org/x/mod/sumdb/note test suite (the
reference implementation of signed notes) and the C2SP tlog-checkpoint spec.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import pathlib
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatguard.evidence.checkpoint import (
    MAX_SIGNATURES,
    Checkpoint,
    CheckpointError,
    format_vkey,
    note_key_hash,
    open_note,
    open_signed_note,
    parse_vkey,
    sign_note,
)
from chatguard.evidence.envelope import EVIDENCE_PAYLOAD_TYPE, sign
from chatguard.evidence.keys import Signer, public_to_pem
from chatguard.evidence.merkle import MerkleTree, leaf_hash, root

# --- Go note package vectors ---------------------------------------------------

# "PRIVATE+KEY+PeterNeumann+c74f20a3+<base64(0x01 || seed)>" from the Go tests.
PETER_SKEY_B64 = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = (
    b"If you think cryptography is the answer to your problem,\n"
    b"then you don't know what your problem is.\n"
)
PETER_SIG = (
    "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXg"
    "KvqfqdngotpRZb6KE6RyyBwJnAM=\n"
).encode()
ENOCH_SIG = (
    "\u2014 EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG0"
    "1oOTGwnWLox33WWd1RvMc+QQ=\n"
).encode()

PETER = Signer.from_seed("PeterNeumann", base64.b64decode(PETER_SKEY_B64)[1:])


def test_key_hash_and_vkey_match_go() -> None:
    assert note_key_hash("PeterNeumann", PETER.public_key).hex() == "c74f20a3"
    assert format_vkey(PETER.verifier) == PETER_VKEY
    assert parse_vkey(PETER_VKEY) == PETER.verifier
    assert parse_vkey(ENOCH_VKEY).name == "EnochRoot"


def test_key_hash_is_the_spec_formula() -> None:
    expected = hashlib.sha256(b"PeterNeumann\n\x01" + PETER.public_key).digest()[:4]
    assert note_key_hash("PeterNeumann", PETER.public_key) == expected


def test_sign_note_matches_go_byte_for_byte() -> None:
    assert sign_note(TEXT, PETER) == TEXT + b"\n" + PETER_SIG


def test_open_ignores_unknown_signers() -> None:
    opened = open_signed_note(TEXT + b"\n" + PETER_SIG + ENOCH_SIG, [PETER.verifier])
    assert opened.text == TEXT
    assert opened.verified_by == (PETER.verifier,)


def test_open_with_both_keys() -> None:
    enoch = parse_vkey(ENOCH_VKEY)
    opened = open_signed_note(TEXT + b"\n" + PETER_SIG + ENOCH_SIG, [PETER.verifier, enoch])
    assert opened.verified_by == (PETER.verifier, enoch)


def test_open_without_a_known_signer_names_the_signers() -> None:
    with pytest.raises(
        CheckpointError, match=r"no signature from a trusted key.*EnochRoot\+af0cfe78"
    ):
        open_signed_note(TEXT + b"\n" + ENOCH_SIG, [PETER.verifier])


def test_bad_signature_from_a_known_key_rejects_the_note() -> None:
    mangled = PETER_SIG[:60] + b"ABCD" + PETER_SIG[60:]
    with pytest.raises(CheckpointError, match=r"invalid signature for key PeterNeumann\+c74f20a3"):
        open_signed_note(TEXT + b"\n" + mangled, [PETER.verifier])
    # Even when another trusted key did sign correctly.
    enoch = parse_vkey(ENOCH_VKEY)
    with pytest.raises(CheckpointError, match="invalid signature"):
        open_signed_note(TEXT + b"\n" + ENOCH_SIG + mangled, [PETER.verifier, enoch])


def test_repeated_signatures_are_tolerated() -> None:
    note = TEXT + b"\n" + PETER_SIG + PETER_SIG + ENOCH_SIG + ENOCH_SIG
    assert open_signed_note(note, [PETER.verifier]).verified_by == (PETER.verifier,)


@pytest.mark.parametrize(
    "note",
    [
        TEXT,
        TEXT + b"\n",
        TEXT + b"\n" + PETER_SIG[:-1],
        b"\x01" + TEXT + b"\n" + PETER_SIG,
        b"\xff" + TEXT + b"\n" + PETER_SIG,
        TEXT + b"\n" + PETER_SIG.replace(b"PeterNeumann", b"Bad Name"),
        TEXT + b"\n" + PETER_SIG + b"Unexpected line.\n",
        TEXT + b"\n" + PETER_SIG.replace("\u2014".encode(), b"-"),
        TEXT + b"\n" + PETER_SIG.replace(b"AM=", b"AM"),
        TEXT.replace(b"\n", b"\r\n") + b"\r\n" + PETER_SIG,
        TEXT + b"\n" + "\u2014 PeterNeumann AAAA\n".encode(),
        TEXT + b"\n" + "\u2014 PeterNeumann\n".encode(),
        TEXT + b"\n" + "\u2014 Peter+Neumann AAAAAAAA\n".encode(),
        TEXT + b"\n" + PETER_SIG * (MAX_SIGNATURES + 1),
    ],
)
def test_malformed_notes(note: bytes) -> None:
    with pytest.raises(CheckpointError, match=r"malformed|not|short|control"):
        open_signed_note(note, [PETER.verifier])


def test_vkey_manglings_are_rejected() -> None:
    # As in Go's TestNewVerifier: every proper substring and every one-byte
    # change of a valid verifier key is refused.
    b = PETER_VKEY.encode()
    for i in range(len(b) + 1):
        for j in range(i + 1, len(b) + 1):
            if (i, j) != (0, len(b)):
                with pytest.raises(CheckpointError):
                    parse_vkey(b[i:j].decode())
    for i in range(len(b)):
        changed = bytearray(b)
        changed[i] += 1
        with pytest.raises(CheckpointError):
            parse_vkey(changed.decode())


@pytest.mark.parametrize(
    "vkey",
    [
        # Wrong key length with a matching key hash; unknown algorithm likewise.
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ],
)
def test_bad_vkeys(vkey: str) -> None:
    with pytest.raises(CheckpointError):
        parse_vkey(vkey)


# --- Checkpoints ------------------------------------------------------------------

LOG = Signer.from_seed("chatguard.example/log", bytes(range(32)))
ROOT = root([leaf_hash(b"%d" % i) for i in range(5)])


def test_spec_example_body_round_trips() -> None:
    body = b"example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    checkpoint = Checkpoint.from_body(body)
    assert checkpoint.origin == "example.com/behind-the-sofa"
    assert checkpoint.size == 20852163
    assert len(checkpoint.root_hash) == 32
    assert checkpoint.body() == body


def test_body_format() -> None:
    checkpoint = Checkpoint("chatguard.example/log", 5, ROOT, ("ext one",))
    expected = f"chatguard.example/log\n5\n{base64.b64encode(ROOT).decode()}\next one\n"
    assert checkpoint.body() == expected.encode()
    assert Checkpoint.from_body(checkpoint.body()) == checkpoint


def test_sign_and_open() -> None:
    checkpoint = Checkpoint("chatguard.example/log", 5, ROOT)
    note = sign_note(checkpoint.body(), LOG)
    assert note.startswith(checkpoint.body() + "\n\u2014 chatguard.example/log ".encode())
    assert open_note(note, [LOG.verifier]) == checkpoint
    assert open_note(note, [LOG.verifier], origin="chatguard.example/log") == checkpoint
    with pytest.raises(CheckpointError, match=r"not 'other\.example/log'"):
        open_note(note, [LOG.verifier], origin="other.example/log")


def test_empty_tree_checkpoint() -> None:
    checkpoint = Checkpoint("chatguard.example/log", 0, root([]))
    assert open_note(sign_note(checkpoint.body(), LOG), [LOG.verifier]) == checkpoint


def test_cosigned_checkpoint_opens_with_either_key() -> None:
    witness = Signer.from_seed("witness.example", bytes(32))
    note = sign_note(Checkpoint("chatguard.example/log", 5, ROOT).body(), LOG, witness)
    assert open_note(note, [witness.verifier]).size == 5
    assert open_note(note, [LOG.verifier]).size == 5


def test_a_rotated_key_is_a_different_verifier() -> None:
    rotated = Signer.from_seed("chatguard.example/log", bytes(range(1, 33)))
    note = sign_note(Checkpoint("chatguard.example/log", 5, ROOT).body(), rotated)
    with pytest.raises(CheckpointError, match="no signature from a trusted key"):
        open_note(note, [LOG.verifier])
    assert open_note(note, [LOG.verifier, rotated.verifier]).size == 5


def test_a_signed_note_that_is_not_a_checkpoint() -> None:
    with pytest.raises(CheckpointError, match="needs origin, size and root"):
        open_note(sign_note(b"just one line\n", LOG), [LOG.verifier])


B64_ROOT = base64.b64encode(ROOT).decode()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("log\n5\n" + B64_ROOT, "end with a newline"),
        ("log\n5\n", "needs origin, size and root"),
        ("log\n\n5\n" + B64_ROOT + "\n", "empty line"),
        ("log\n5\n" + B64_ROOT + "\n\n", "empty line"),
        ("log\n05\n" + B64_ROOT + "\n", "decimal"),
        ("log\n+5\n" + B64_ROOT + "\n", "decimal"),
        ("log\n 5\n" + B64_ROOT + "\n", "decimal"),
        ("log\n5_0\n" + B64_ROOT + "\n", "decimal"),
        ("log\n\uff15\n" + B64_ROOT + "\n", "decimal"),
        ("log\n-1\n" + B64_ROOT + "\n", "decimal"),
        (f"log\n{2**64}\n" + B64_ROOT + "\n", "decimal"),
        ("log\n5\n" + B64_ROOT.rstrip("=") + "\n", "base64"),
        ("log\n5\n" + base64.b64encode(ROOT[:31]).decode() + "\n", "31 bytes"),
        ("log\n5\n" + base64.urlsafe_b64encode(b"\xff" * 32).decode() + "\n", "base64"),
        ("lo\tg\n5\n" + B64_ROOT + "\n", "control"),
    ],
)
def test_malformed_bodies(body: str, message: str) -> None:
    with pytest.raises(CheckpointError, match=message):
        Checkpoint.from_body(body.encode())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("", 1, ROOT), "origin"),
        (("a\nb", 1, ROOT), "origin"),
        (("log", -1, ROOT), "tree size"),
        (("log", 2**64, ROOT), "tree size"),
        (("log", True, ROOT), "tree size"),
        (("log", 1, ROOT[:31]), "32 bytes"),
        (("log", 1, ROOT, ("",)), "extensions"),
        (("log", 1, ROOT, ("a\nb",)), "extensions"),
        (("\ud800", 1, ROOT), "origin"),
    ],
)
def test_checkpoint_construction_is_checked(args: tuple[object, ...], message: str) -> None:
    with pytest.raises(CheckpointError, match=message):
        Checkpoint(*args)  # type: ignore[arg-type]


def test_sign_note_refuses_text_it_could_not_open() -> None:
    with pytest.raises(CheckpointError, match="newline"):
        sign_note(b"no newline", LOG)
    with pytest.raises(CheckpointError, match="control"):
        sign_note(b"tab\there\n", LOG)


# --- Tampering --------------------------------------------------------------------


@settings(max_examples=200)
@given(
    origin=st.text(
        st.characters(min_codepoint=0x21, max_codepoint=0x2FF, exclude_characters="+"),
        min_size=1,
        max_size=20,
    ),
    size=st.integers(0, 2**64 - 1),
    root_hash=st.binary(min_size=32, max_size=32),
    extensions=st.lists(st.sampled_from(["ext", "a b c", "\u00e9t\u00e9"]), max_size=2),
    bit=st.integers(min_value=0),
)
def test_any_flipped_bit_in_a_signed_checkpoint_is_detected(
    origin: str, size: int, root_hash: bytes, extensions: list[str], bit: int
) -> None:
    checkpoint = Checkpoint(origin, size, root_hash, tuple(extensions))
    note = sign_note(checkpoint.body(), LOG)
    assert open_note(note, [LOG.verifier]) == checkpoint
    bit %= len(note) * 8
    tampered = bytearray(note)
    tampered[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(CheckpointError):
        open_note(bytes(tampered), [LOG.verifier])


@settings(max_examples=200)
@given(data=st.binary(max_size=300) | st.text(max_size=200).map(str.encode))
def test_opener_never_raises_anything_but_checkpoint_error(data: bytes) -> None:
    for note in (data, data + b"\n\n" + PETER_SIG, TEXT + b"\n" + data):
        with contextlib.suppress(CheckpointError):
            open_note(note, [PETER.verifier])


# --- docs/evidence-format.md stays true ---------------------------------------------

FORMAT_DOC = pathlib.Path(__file__).resolve().parent.parent / "docs" / "evidence-format.md"


def test_format_document_worked_example_is_current() -> None:
    text = FORMAT_DOC.read_text(encoding="utf-8")
    signer = Signer.from_seed("chatguard.example/log", bytes(range(32)))
    payloads = [
        b'{"kind":"message","room":"lobby","text":"hi"}',
        b'{"kind":"message","room":"lobby","text":"bye"}',
    ]
    leaves = [sign(EVIDENCE_PAYLOAD_TYPE, p, signer).to_json() for p in payloads]
    tree = MerkleTree()
    for leaf in leaves:
        tree.append(leaf_hash(leaf))
    note = sign_note(Checkpoint("chatguard.example/log", 2, tree.root()).body(), signer)
    expected = [
        signer.public_key.hex(),
        signer.key_id,
        format_vkey(signer.verifier),
        public_to_pem(signer.verifier).decode(),
        *(leaf.decode() for leaf in leaves),
        *(leaf_hash(leaf).hex() for leaf in leaves),
        tree.root().hex(),
        note.decode(),
    ]
    for value in expected:
        assert value in text


def test_format_document_verifier_program_runs(capsys: pytest.CaptureFixture[str]) -> None:
    # The third-party verifier in the document uses no ChatGuard code; run it.
    text = FORMAT_DOC.read_text(encoding="utf-8")
    match = re.search(r"```python\n(.*?)```", text, re.DOTALL)
    assert match is not None
    exec(compile(match.group(1), "<evidence-format.md: python block>", "exec"), {})
    assert "record 0 of chatguard.example/log (size 2) is authentic" in capsys.readouterr().out
