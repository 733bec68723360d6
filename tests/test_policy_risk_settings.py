"""Tests for ``chatguard.policy.risk_settings``: defaults, overrides and
refusal of bad ``settings.risk`` values with their key."""

from __future__ import annotations

import pytest

from chatguard.policy.risk_settings import DEFAULT_SETTINGS, parse_settings

# --- Settings ------------------------------------------------------------------------


def test_settings_default_when_absent() -> None:
    assert parse_settings({}) == DEFAULT_SETTINGS
    assert parse_settings({"risk": None, "other": 1}, half_life=60.0).half_life == 60.0


def test_settings_override_and_merge() -> None:
    s = parse_settings(
        {
            "risk": {
                "adult_to_minor": 3,
                "max_pairs": 8,
                "signal_factors": {"age_probe": 0.1},
                "signal_caps": {"meeting": None, "sexual": 10},
                "minor_target_signals": ["sexual"],
                "combinations": [["meeting", "secrecy", 2]],
                "severity_at": {"critical": 40},
                "sextortion": {"severity": "high", "capture": None},
                "safeguarding": False,
            }
        }
    )
    assert s.adult_to_minor == 3.0
    assert s.max_pairs == 8
    assert s.factor("age_probe") == 0.1
    assert s.factor("flattery") == 0.5  # other defaults kept
    assert "meeting" not in s.signal_caps
    assert s.signal_caps["sexual"] == 10.0
    assert s.minor_target_signals == {"sexual"}
    assert s.combinations == (("meeting", "secrecy", 2.0),)
    assert s.severity_at == {"medium": 8.0, "high": 16.0, "critical": 40.0}
    assert s.sextortion is not None
    assert (s.sextortion.severity, s.sextortion.capture) == ("high", None)
    assert s.safeguarding is None


@pytest.mark.parametrize(
    ("risk", "message"),
    [
        ([], "settings.risk: must be a mapping"),
        ({"adult_to_minr": 2}, "settings.risk.adult_to_minr: unknown setting"),
        ({"adult_to_minor": "2"}, "settings.risk.adult_to_minor: must be a number"),
        ({"adult_to_minor": True}, "settings.risk.adult_to_minor: must be a number"),
        ({"adult_to_minor": -1}, "settings.risk.adult_to_minor: must be >= 0"),
        ({"max_pairs": 0}, "settings.risk.max_pairs: must be a whole number"),
        ({"max_pairs": 2.5}, "settings.risk.max_pairs: must be a whole number"),
        ({"signal_factors": {"grooming": 1}}, "settings.risk.signal_factors.grooming: unknown"),
        ({"minor_target_signals": "sexual"}, "settings.risk.minor_target_signals: must be a list"),
        ({"combinations": [["meeting", "secrecy"]]}, r"settings.risk.combinations\[0\]"),
        ({"severity_at": {"urgent": 3}}, "settings.risk.severity_at.urgent"),
        ({"severity_at": {"high": 50}}, "medium <= high <= critical"),
        ({"sexual_with_minor_severity": "urgent"}, "must be one of low"),
        ({"sextortion": {"severty": "high"}}, "settings.risk.sextortion.severty: unknown"),
        ({"max_score": 0}, "settings.risk.max_score: must be > 0"),
    ],
)
def test_bad_settings_are_refused_with_their_key(risk: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_settings({"risk": risk})
