-- Prosody behind ChatGuard: XMPP over WebSocket (RFC 7395) only on loopback,
-- so every web client goes through the sidecar. See docs/xmpp.md.
--
-- Install: apt install prosody; copy to /etc/prosody/prosody.cfg.lua (or
-- run `prosody -F --config examples/xmpp/prosody.cfg.lua` to try it).
-- Replace chat.example with your domain.

admins = { }

-- Runs as the prosody user when started by the Debian service; set
-- run_as_root = true only for a throwaway server started as root.
pidfile = "/run/prosody/prosody.pid"

modules_enabled = {
    "roster"; "saslauth"; "disco"; "ping"; "presence"; "carbons"; "blocklist";
    "vcard_legacy"; "private"; "pep"; "smacks"; "mam";
    "websocket";   -- XMPP over WebSocket, at /xmpp-websocket on the HTTP port
    "http";
}

-- Only ChatGuard talks to Prosody's WebSocket endpoint, over loopback. TLS
-- for the clients ends in front of ChatGuard (a reverse proxy), so Prosody
-- must treat the loopback WebSocket as secure to allow password sign-in.
http_ports = { 5280 }
http_interfaces = { "127.0.0.1" }
https_ports = { }
consider_websocket_secure = true
cross_domain_websocket = true

-- Native XMPP clients (c2s on 5222) and other servers (s2s) do not pass
-- through ChatGuard. Keep c2s on loopback (or behind a firewall) if every
-- user must get the speed bumps; disable s2s unless you federate.
c2s_interfaces = { "127.0.0.1" }
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
modules_disabled = { "s2s" }

authentication = "internal_hashed"
storage = "internal"

-- Keep stanzas within ChatGuard's xmpp.max_stanza_bytes (262144 by default).
c2s_stanza_size_limit = 262144

log = {
    info = "/var/log/prosody/prosody.log";
    error = "/var/log/prosody/prosody.err";
}

VirtualHost "chat.example"

-- Group chat. Non-anonymous rooms let ChatGuard see who is behind each nick,
-- so room messages are judged by the sender's real account and age band.
Component "conference.chat.example" "muc"
    muc_room_default_public_jids = true
