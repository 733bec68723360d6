"""Configuration: defaults, every refusal (naming file, dotted key, reason),
environment overrides, and the operator documentation of every key.

Tables drive the error cases: each row is a YAML document and the dotted key
and reason its refusal must name.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from chatguard import config
from chatguard.config import Config, ConfigError, from_mapping, iter_keys, load

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "configuration.md"

Write = Callable[[str | bytes], Path]


@pytest.fixture
def write(tmp_path: Path) -> Write:
    def write(content: str | bytes) -> Path:
        path = tmp_path / "chatguard.yaml"
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    return write


def lookup(cfg: Config, dotted: str) -> Any:
    node: Any = cfg
    for part in dotted.split("."):
        node = getattr(node, part)
    return node


def doc_value(default: Any) -> str:
    """A default as the docs (and ``chatguard config keys``) write it: JSON."""
    if isinstance(default, tuple):
        default = list(default)
    elif isinstance(default, Mapping):
        default = dict(default)
    return json.dumps(default)


# -- defaults ---------------------------------------------------------------


@pytest.mark.parametrize("content", ["", "# only a comment\n", "---\n", "~\n"])
def test_an_empty_file_is_the_defaults(write: Write, content: str) -> None:
    assert load(write(content), env={}) == Config()


def test_no_file_is_the_defaults() -> None:
    assert load(None, env={}) == Config()


def test_defaults_are_the_documented_ones() -> None:
    cfg = Config()
    assert cfg.listen.port == 8000
    assert cfg.upstream.url == "ws://127.0.0.1:9000"
    assert cfg.limits.max_frame_bytes == 1_048_576
    assert cfg.identity.jwt.algorithms == ("RS256", "ES256", "EdDSA")
    assert cfg.identity.jwt.enabled is False
    assert cfg.codec.mapping == "example"
    for key, default, _doc in iter_keys():
        assert lookup(cfg, key) == default, key


def test_iter_keys_lists_every_leaf_once_with_a_doc() -> None:
    keys = [key for key, _default, _doc in iter_keys()]
    assert len(keys) == len(set(keys))
    assert "identity.jwt.audience" in keys
    assert "identity.header.attrs" in keys
    assert "log_level" in keys
    # Sections are not leaves.
    assert "identity" not in keys
    assert "identity.jwt" not in keys
    for key, _default, doc in iter_keys():
        assert doc.strip(), f"{key} has no doc"


@pytest.mark.parametrize("section", ["listen", "limits", "identity"])
def test_a_null_section_is_its_defaults(write: Write, section: str) -> None:
    assert load(write(f"{section}:\n"), env={}) == Config()


def test_a_partial_section_keeps_the_other_defaults(write: Write) -> None:
    cfg = load(write("listen: {port: 9100}\nlimits: {idle_timeout: 5}\n"), env={})
    assert cfg.listen == config.ListenConfig(host="127.0.0.1", port=9100)
    assert cfg.limits.idle_timeout == 5.0
    assert isinstance(cfg.limits.idle_timeout, float)
    assert cfg.limits.heartbeat == 30.0


def test_a_full_file_loads_every_type_kind(write: Write) -> None:
    cfg = load(
        write(
            """
listen: {host: 0.0.0.0, port: 0}
upstream: {url: "wss://chat.example:443/ws", connect_timeout: 2, tls_verify: false}
identity:
  welcome: false
  header: {user: X-User, attrs: {age_band: X-Age-Band}}
  jwt: {enabled: true, key: secret, algorithms: [HS256], audience: chat}
store: {backend: redis, max_keys: 10}
log_level: debug
"""
        ),
        env={},
    )
    assert cfg.listen.host == "0.0.0.0"
    assert cfg.upstream.connect_timeout == 2.0
    assert cfg.upstream.tls_verify is False
    assert cfg.identity.welcome is False
    assert dict(cfg.identity.header.attrs) == {"age_band": "X-Age-Band"}
    assert cfg.identity.jwt.algorithms == ("HS256",)
    assert cfg.store.backend == "redis"
    assert cfg.log_level == "debug"


def test_a_loaded_config_is_frozen(write: Write) -> None:
    cfg = load(write("identity: {header: {attrs: {age_band: X-Age}}}\n"), env={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.listen.port = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        cfg.identity.header.attrs["age_band"] = "X-Other"  # type: ignore[index]


def test_from_mapping_does_not_touch_its_input() -> None:
    data = {"listen": {"port": 1234}}
    cfg = from_mapping(data)
    assert cfg.listen.port == 1234
    assert data == {"listen": {"port": 1234}}


# -- refusals -----------------------------------------------------------------

# (YAML document, dotted key the error names, fragment of the reason)
BAD_VALUES = [
    # unknown keys, at every depth
    ("bogus: 1", "bogus", "unknown key"),
    ("listen: {hots: x}", "listen.hots", "unknown key"),
    ("identity: {jwt: {enabeld: true}}", "identity.jwt.enabeld", "unknown key"),
    ("identity: {header: {user: X, nmae: Y}}", "identity.header.nmae", "unknown key"),
    # bool
    ("admin: {enabled: 'yes'}", "admin.enabled", "true or false"),
    ("upstream: {tls_verify: 1}", "upstream.tls_verify", "true or false"),
    # int
    ("listen: {port: '80'}", "listen.port", "must be an integer"),
    ("listen: {port: true}", "listen.port", "must be an integer"),
    ("listen: {port: 80.5}", "listen.port", "must be an integer"),
    ("store: {max_keys: [1]}", "store.max_keys", "must be an integer"),
    ("listen: {port: -1}", "listen.port", "must not be negative"),
    ("limits: {write_buffer_bytes: -65536}", "limits.write_buffer_bytes", "must not be negative"),
    # float
    ("upstream: {connect_timeout: fast}", "upstream.connect_timeout", "must be a number"),
    ("limits: {idle_timeout: false}", "limits.idle_timeout", "must be a number"),
    ("limits: {heartbeat: -0.5}", "limits.heartbeat", "must not be negative"),
    ("limits: {drain_timeout: -10}", "limits.drain_timeout", "must not be negative"),
    # str
    ("listen: {host: 127}", "listen.host", "must be a string"),
    ("data_dir: [a, b]", "data_dir", "must be a string"),
    ("identity: {jwt: {key: {pem: x}}}", "identity.jwt.key", "must be a string"),
    # tuple of str
    ("identity: {jwt: {algorithms: RS256}}", "identity.jwt.algorithms", "list of strings"),
    ("identity: {jwt: {algorithms: [RS256, 256]}}", "identity.jwt.algorithms", "list of strings"),
    # mapping of str to str
    ("identity: {header: {attrs: [age_band]}}", "identity.header.attrs", "strings to strings"),
    ("identity: {header: {attrs: {age_band: 1}}}", "identity.header.attrs", "strings to strings"),
    ("identity: {jwt: {attr_claims: {age: null}}}", "identity.jwt.attr_claims", "strings"),
    # Literal
    ("log_level: verbose", "log_level", "must be one of debug, info, warning, error"),
    ("store: {backend: postgres}", "store.backend", "must be one of memory, redis"),
    ("codec: {type: smtp}", "codec.type", "must be one of jsonchat"),
    ("log_level: [info]", "log_level", "must be one of"),
    # cross-field checks
    ("upstream: {url: 'http://chat.example'}", "upstream.url", "ws:// or wss://"),
    ("upstream: {url: 'https://chat.example'}", "upstream.url", "ws:// or wss://"),
    ("upstream: {url: 'ws://'}", "upstream.url", "with a host"),
    ("upstream: {url: 'chat.example:9000'}", "upstream.url", "ws:// or wss://"),
    ("listen: {port: 65536}", "listen.port", "0-65535"),
    ("admin: {port: 70000}", "admin.port", "0-65535"),
    ("limits: {max_frame_bytes: 1023}", "limits.max_frame_bytes", "at least 1024"),
    ("limits: {max_connections: 0}", "limits.max_connections", "at least 1"),
    ("identity: {jwt: {enabled: true}}", "identity.jwt.key", "no key or key_file"),
    ("identity: {jwt: {key: k, key_file: /k.pem}}", "identity.jwt.key_file", "not both"),
    # xmpp
    ("xmpp: {service_jid: 'guard@example/bot'}", "xmpp.service_jid", "bare JID"),
    ("xmpp: {service_jid: ''}", "xmpp.service_jid", "bare JID"),
    ("xmpp: {service_jid: 'a b'}", "xmpp.service_jid", "bare JID"),
    ("xmpp: {max_depth: 1}", "xmpp.max_depth", "at least 2"),
    ("xmpp: {max_stanza_bytes: 100}", "xmpp.max_stanza_bytes", "at least 1024"),
    ("xmpp: {on_bad_stanza: drop}", "xmpp.on_bad_stanza", "must be one of refuse, pass"),
]


@pytest.mark.parametrize(("content", "key", "reason"), BAD_VALUES)
def test_a_bad_file_names_file_key_and_reason(
    write: Write, content: str, key: str, reason: str
) -> None:
    path = write(content + "\n")
    with pytest.raises(ConfigError) as info:
        load(path, env={})
    err = info.value
    assert err.source == str(path)
    assert err.key == key
    assert reason in err.reason
    assert str(err).startswith(f"{path}: {key}: ")


@pytest.mark.parametrize(("content", "key", "reason"), BAD_VALUES)
def test_from_mapping_refuses_the_same_values(content: str, key: str, reason: str) -> None:
    import yaml

    with pytest.raises(ConfigError) as info:
        from_mapping(yaml.safe_load(content), source="demo settings")
    assert (info.value.source, info.value.key) == ("demo settings", key)
    assert reason in info.value.reason


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("ws://chat.example", True),
        ("wss://chat.example:8443/socket?room=1", True),
        ("ws://[::1]:9000", True),
        ("ftp://chat.example", False),
        ("//chat.example", False),
        ("", False),
    ],
)
def test_upstream_url_schemes(value: str, ok: bool) -> None:
    data = {"upstream": {"url": value}}
    if ok:
        assert from_mapping(data).upstream.url == value
    else:
        with pytest.raises(ConfigError, match=r"upstream\.url"):
            from_mapping(data)


@pytest.mark.parametrize("port", [0, 1, 65535])
def test_port_bounds_are_inclusive(port: int) -> None:
    assert from_mapping({"listen": {"port": port}, "admin": {"port": port}}).listen.port == port


def test_jwt_with_a_key_file_and_no_key_is_accepted() -> None:
    cfg = from_mapping({"identity": {"jwt": {"enabled": True, "key_file": "/etc/jwt.pem"}}})
    assert cfg.identity.jwt.key_file == "/etc/jwt.pem"


@pytest.mark.parametrize("content", ["listen: 5", "identity: {jwt: [x]}", "limits: text"])
def test_a_section_that_is_not_a_mapping_is_refused(write: Write, content: str) -> None:
    path = write(content + "\n")
    with pytest.raises(ConfigError, match="expected a mapping") as info:
        load(path, env={})
    assert info.value.source == str(path)
    assert info.value.key.startswith(content.split(":")[0])


def test_a_section_that_is_not_a_mapping_names_the_section_key(write: Write) -> None:
    with pytest.raises(ConfigError) as info:
        load(write("listen: 5\n"), env={})
    assert info.value.key == "listen"


def test_a_nan_number_is_refused(write: Write) -> None:
    path = write("upstream: {connect_timeout: .nan}\n")
    try:
        load(path, env={})
        refused_key = None
    except ConfigError as err:
        refused_key = err.key
    assert refused_key == "upstream.connect_timeout"


# -- file-level refusals --------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("listen: {port: 1\n", "not valid YAML"),
        ("listen:\n  port: 1\n port: 2\n", "not valid YAML"),
        ("key: [unclosed\n", "not valid YAML"),
        ("- listen\n- upstream\n", "top level must be a mapping"),
        ("just text\n", "top level must be a mapping"),
        ("42\n", "top level must be a mapping"),
    ],
)
def test_a_bad_document_names_the_file(write: Write, content: str, reason: str) -> None:
    path = write(content)
    with pytest.raises(ConfigError) as info:
        load(path, env={})
    assert (info.value.source, info.value.key) == (str(path), "<file>")
    assert reason in info.value.reason
    assert str(path) in str(info.value)


def test_a_yaml_error_says_where_in_the_file(write: Write) -> None:
    with pytest.raises(ConfigError, match=r"line \d+") as info:
        load(write("listen:\n  port: [1\nadmin: {}\n"), env={})
    assert info.value.key == "<file>"


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(ConfigError, match="cannot read") as info:
        load(path, env={})
    assert (info.value.source, info.value.key) == (str(path), "<file>")
    assert "No such file" in info.value.reason


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read") as info:
        load(tmp_path, env={})
    assert info.value.source == str(tmp_path)


def test_a_file_that_is_not_utf8_is_refused(write: Write) -> None:
    path = write(b"log_level: \xff\xfe\n")
    with pytest.raises(ConfigError) as info:
        load(path, env={})
    assert (info.value.source, info.value.key) == (str(path), "<file>")


# -- environment overrides -------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "key", "value"),
    [
        ({"CHATGUARD__LISTEN__PORT": "9001"}, "listen.port", 9001),
        ({"CHATGUARD__LISTEN__HOST": "0.0.0.0"}, "listen.host", "0.0.0.0"),
        ({"CHATGUARD__ADMIN__ENABLED": "false"}, "admin.enabled", False),
        ({"CHATGUARD__LIMITS__IDLE_TIMEOUT": "12"}, "limits.idle_timeout", 12.0),
        (
            {"CHATGUARD__UPSTREAM__URL": "wss://chat.example/ws"},
            "upstream.url",
            "wss://chat.example/ws",
        ),
        ({"CHATGUARD__LOG_LEVEL": "debug"}, "log_level", "debug"),
        (
            {"CHATGUARD__IDENTITY__JWT__ALGORITHMS": "[EdDSA, ES256]"},
            "identity.jwt.algorithms",
            ("EdDSA", "ES256"),
        ),
        (
            {"CHATGUARD__IDENTITY__HEADER__ATTRS": "{age_band: X-Age-Band}"},
            "identity.header.attrs",
            {"age_band": "X-Age-Band"},
        ),
        # Names are case-insensitive after the prefix.
        ({"CHATGUARD__Store__Backend": "redis"}, "store.backend", "redis"),
    ],
)
def test_environment_overrides_are_nested_and_typed(
    write: Write, env: dict[str, str], key: str, value: Any
) -> None:
    cfg = load(write(""), env=env)
    got = lookup(cfg, key)
    assert got == value
    assert type(got) is type(value) or isinstance(got, Mapping)


def test_environment_overrides_the_file_and_keeps_siblings(write: Write) -> None:
    path = write("listen: {host: 0.0.0.0, port: 1}\nidentity: {jwt: {audience: chat}}\n")
    cfg = load(
        path,
        env={
            "CHATGUARD__LISTEN__PORT": "2",
            "CHATGUARD__IDENTITY__JWT__ENABLED": "true",
            "CHATGUARD__IDENTITY__JWT__KEY": "shared-secret",
        },
    )
    assert cfg.listen == config.ListenConfig(host="0.0.0.0", port=2)
    assert cfg.identity.jwt.audience == "chat"
    assert cfg.identity.jwt.enabled is True
    assert cfg.identity.jwt.key == "shared-secret"


def test_environment_applies_without_a_file() -> None:
    assert load(None, env={"CHATGUARD__LISTEN__PORT": "7"}).listen.port == 7


@pytest.mark.parametrize(
    "name",
    ["PATH", "CHATGUARD_LISTEN__PORT", "XCHATGUARD__LISTEN__PORT", "CHATGUARD__", "CHATGUARD____"],
)
def test_other_environment_variables_are_ignored(write: Write, name: str) -> None:
    assert load(write(""), env={name: "12"}) == Config()


def test_env_none_reads_the_process_environment(
    write: Write, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHATGUARD__ADMIN__PORT", "9999")
    assert load(write(""), env=None).admin.port == 9999
    assert load(write(""), env={}).admin.port == 8081


def test_an_environment_value_that_is_not_yaml_names_the_variable(write: Write) -> None:
    with pytest.raises(ConfigError) as info:
        load(write(""), env={"CHATGUARD__LISTEN__PORT": "[9000"})
    err = info.value
    assert err.source == "environment CHATGUARD__LISTEN__PORT"
    assert err.key == "listen.port"
    assert "bad value" in err.reason


@pytest.mark.parametrize(
    ("env", "key", "reason"),
    [
        ({"CHATGUARD__LISTEN__PORT": "eighty"}, "listen.port", "must be an integer"),
        ({"CHATGUARD__LISTEN__PROT": "80"}, "listen.prot", "unknown key"),
        ({"CHATGUARD__LOG_LEVEL": "loud"}, "log_level", "must be one of"),
        ({"CHATGUARD__UPSTREAM__URL": "http://x"}, "upstream.url", "ws://"),
        ({"CHATGUARD__LISTEN": "8000"}, "listen", "expected a mapping"),
    ],
)
def test_an_environment_value_of_the_wrong_type_is_refused(
    write: Write, env: dict[str, str], key: str, reason: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load(write(""), env=env)
    assert info.value.key.rstrip(".") == key
    assert reason in info.value.reason


def test_an_environment_value_of_the_wrong_type_names_the_variable(write: Write) -> None:
    with pytest.raises(ConfigError) as info:
        load(write(""), env={"CHATGUARD__LISTEN__PORT": "eighty"})
    assert "CHATGUARD__LISTEN__PORT" in str(info.value)


# -- documentation -------------------------------------------------------------


def doc_sections() -> dict[str, str]:
    sections: dict[str, str] = {}
    current: str | None = None
    for line in DOC.read_text(encoding="utf-8").splitlines():
        heading = re.fullmatch(r"## `([a-z_]+)`.*", line)
        if heading:
            current = heading.group(1)
            sections[current] = ""
        elif line.startswith("## "):
            current = None
        elif current is not None:
            sections[current] += line + "\n"
    return sections


def table_rows(text: str) -> dict[str, tuple[str, str]]:
    """``key -> (default cell, meaning cell)`` for every ``| `key` | ... |`` row."""
    rows: dict[str, tuple[str, str]] = {}
    for line in text.splitlines():
        match = re.fullmatch(r"\| `([a-z_.]+)` \| `(.*?)` \| (.+) \|", line.strip())
        if match:
            rows[match.group(1)] = (match.group(2), match.group(3))
    return rows


def test_docs_have_a_section_per_top_level_key() -> None:
    sections = doc_sections()
    top = {f.name for f in dataclasses.fields(Config)}
    assert set(sections) == top


@pytest.mark.parametrize(("key", "default"), [(k, d) for k, d, _ in iter_keys()])
def test_docs_document_every_key_with_its_default(key: str, default: Any) -> None:
    section = doc_sections()[key.split(".")[0]]
    rows = table_rows(section)
    assert key in rows, f"docs/configuration.md has no row for `{key}`"
    default_cell, meaning = rows[key]
    assert default_cell == doc_value(default), key
    assert len(meaning) > 15, f"the meaning of `{key}` is too short to help an operator"


def test_docs_document_no_key_that_does_not_exist() -> None:
    documented: set[str] = set()
    for text in doc_sections().values():
        documented |= set(table_rows(text))
    assert documented == {key for key, _, _ in iter_keys()}


def test_docs_full_example_is_a_valid_config(tmp_path: Path) -> None:
    text = DOC.read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", text, flags=re.DOTALL)
    assert blocks, "docs/configuration.md has no YAML example"
    example = max(blocks, key=len)
    path = tmp_path / "example.yaml"
    path.write_text(example, encoding="utf-8")
    cfg = load(path, env={})
    # The full example sets every section.
    for f in dataclasses.fields(Config):
        assert re.search(rf"^{f.name}:", example, flags=re.MULTILINE), f.name
    assert cfg.upstream.url.startswith(("ws://", "wss://"))


def test_docs_explain_environment_overrides() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert "CHATGUARD__LIMITS__MAX_FRAME_BYTES" in text
    assert "CHATGUARD__SECTION__KEY" in text


def test_the_xmpp_codec_is_chosen_with_its_settings(write: Write) -> None:
    path = write(
        "codec: {type: xmpp}\n"
        "xmpp: {service_jid: guard.example, max_stanza_bytes: 4096, on_bad_stanza: pass}\n"
    )
    cfg = load(path, env={})
    assert cfg.codec.type == "xmpp"
    assert (cfg.xmpp.service_jid, cfg.xmpp.max_stanza_bytes, cfg.xmpp.max_depth) == (
        "guard.example",
        4096,
        32,
    )
    assert cfg.xmpp.on_bad_stanza == "pass"
