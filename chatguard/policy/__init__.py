"""The policy engine: deciding what a chat message means for safety.

This package is pure: text and events in, findings out; no I/O and no clock
reads. ``normalise`` is its first step: it takes the disguises off a message
(look-alike letters, leetspeak, split words, invisible characters ...),
records which disguises were used, and keeps a map back to what the user
actually typed so that a match can be highlighted or redacted there.
"""

from __future__ import annotations

from chatguard.policy.normalise import (
    DEFAULT_MAX_CHARS,
    Evasion,
    Feature,
    Normalised,
    normalise,
)

__all__ = ["DEFAULT_MAX_CHARS", "Evasion", "Feature", "Normalised", "normalise"]
