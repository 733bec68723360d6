"""The moderator console and JSON API, served on the admin listener.

What it owns: moderator accounts and sign-in (``accounts``, ``sessions``,
``limits``, ``auth``), the HTML pages (``pages``), the JSON API (``api``) and
their mounting (``web``). Case state and its rules live in ``chatguard.cases``;
the console only decides who may ask for what, and audits what was seen.

Invariants: nothing is served without an authenticated moderator except the
sign-in page; every state-changing request from a browser carries the
session's CSRF token; evidence content is never written to logs.
"""

from __future__ import annotations
# The web modules are imported by whoever mounts the console (app.py), so that
# `chatguard console token` does not load aiohttp, Jinja2 and the case engine.
