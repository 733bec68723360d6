"""A small policy pack and banner catalogue for live-wiring tests.

The default pack's wording and weights change as T&S staff tune them; tests
of the wiring (does a banner reach the recipient, does a hold hold) use this
fixed pack so they test the wiring, not the tuning.
"""

from __future__ import annotations

from pathlib import Path

import pytest

POLICY = """\
mode: enforce
half_life: 3600
thresholds:
  - at: 30
    actions:
      - {type: capture, before: 10, after: 2}
      - {type: escalate, severity: medium, category: grooming}
"""

RULES = r"""
language: en
rules:
  - id: t.isolation.move_app
    description: Asks a child to continue on another app
    signal: isolation
    weight: 1
    patterns:
      - regex: '\b(add|text|message) me on (snap|snapchat|whatsapp|telegram)\b'
    scope:
      sender_age: [adult, unknown]
      recipient_age: [minor]
    actions:
      - {type: banner, banner: off_platform_warning, audience: recipients}
    examples:
      match: [add me on snap, text me on whatsapp]
      no_match: [i deleted snapchat]

  - id: t.pi_share.phone_minor
    description: A child is about to send a phone number
    signal: pi_share
    weight: 0.5
    patterns:
      - regex: '\b\d{3}[ .-]?\d{3}[ .-]?\d{4}\b'
    scope:
      sender_age: [minor]
    actions:
      - {type: hold, banner: pi_share_confirm}
    examples:
      match: [call me 555 123 4567]
      no_match: [i have 3 cats]

  - id: t.pi_share.phone_unknown
    description: Someone unknown posts a phone number
    signal: pi_share
    weight: 0.5
    patterns:
      - regex: '\b\d{3}[ .-]?\d{3}[ .-]?\d{4}\b'
    scope:
      sender_age: [unknown]
    actions:
      - {type: redact}
    examples:
      match: [ring 555-123-4567]
      no_match: [route 66]

  - id: t.block.forbidden
    description: A word the test pack never delivers
    signal: sexual
    weight: 0.5
    patterns:
      - words: [forbiddenword]
    actions:
      - {type: block, notice: Not delivered by the test pack.}
    examples:
      match: [this has forbiddenword in it]
      no_match: [this is fine]

  - id: t.image_request.minor
    description: Asks a child for a picture
    signal: image_request
    weight: 10
    patterns:
      - regex: '\bsend (me )?(a )?(pic|photo|selfie)s?\b'
    scope:
      sender_age: [adult, unknown]
      recipient_age: [minor]
    actions:
      - {type: banner, banner: deterrence_image_request, audience: sender}
      - {type: capture, before: 5, after: 1}
      - {type: escalate, severity: high, category: grooming}
    examples:
      match: [send me a pic]
      no_match: [send me the link]
"""

BANNERS = """\
banners:
  - id: off_platform_warning
    purpose: test
    severity: warning
    text:
      en: Someone is asking you to chat somewhere else.
      es: Alguien te pide hablar en otra aplicación.
  - id: pi_share_confirm
    purpose: test
    severity: warning
    text:
      en: Are you sure you want to send this number?
  - id: deterrence_image_request
    purpose: test
    severity: critical
    text:
      en: Asking a child for images is a crime.
  - id: safeguarding_help
    purpose: test
    severity: critical
    text:
      en: You can talk to someone right now.
"""


def write_pack(root: Path) -> tuple[Path, Path]:
    policies, banners = root / "policies", root / "banners"
    (policies / "en").mkdir(parents=True)
    banners.mkdir()
    (policies / "policy.yaml").write_text(POLICY, encoding="utf-8")
    (policies / "en" / "rules.yaml").write_text(RULES, encoding="utf-8")
    (banners / "test.yaml").write_text(BANNERS, encoding="utf-8")
    return policies, banners


@pytest.fixture
def test_pack(tmp_path: Path) -> tuple[Path, Path]:
    return write_pack(tmp_path / "pack")
