"""ChatGuard: a chat-safety sidecar proxy.

It sits between chat clients and an existing chat service, decodes every frame
into protocol-neutral chat events, runs them through one pipeline (policies,
speed-bump banners, evidence, escalation), and forwards, holds, rewrites or
drops them. See ``pipeline.py`` for the order of steps and ``relay/`` for the
only code that touches sockets.
"""

__version__ = "0.1.0"
