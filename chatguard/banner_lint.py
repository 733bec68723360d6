"""Checking a banner catalogue against the policy pack that uses it.

What it owns: the cross-checks between ``banners/`` and ``policies/`` that
neither loader can make alone — every banner the pack names exists, every
signal a banner's trigger names is one some rule of the pack detects, and
every banner speaks every language of the pack. ``chatguard banners lint``
prints these; ``LivePolicy`` refuses a pack and catalogue that fail them.

Invariants: pure (values in, problem lines out); each problem is one line
naming the file and line to fix.
"""

from __future__ import annotations

from .banners import Catalogue
from .policy.model import Policy


def named_banners(policy: Policy) -> dict[str, str]:
    """Banner ids the pack's actions name, each with where it is named."""
    named: dict[str, str] = {}
    for rule in policy.rules:
        for action in rule.actions:
            if "banner" in action.params:
                named.setdefault(str(action.params["banner"]), f"{rule.file}:{rule.line}")
    for threshold in policy.thresholds:
        for action in threshold.actions:
            if "banner" in action.params:
                named.setdefault(str(action.params["banner"]), f"thresholds (at {threshold.at})")
    return named


def check_against_pack(catalogue: Catalogue, policy: Policy) -> list[str]:
    problems: list[str] = []
    for banner_id, where in sorted(named_banners(policy).items()):
        if catalogue.get(banner_id) is None:
            problems.append(f"{where}: the pack names banner {banner_id!r}, not in the catalogue")
    detected = {rule.signal.value for rule in policy.rules}
    languages = {lang.split("-")[0] for rule in policy.rules for lang in rule.languages}
    for banner in sorted(catalogue.banners.values(), key=lambda b: (b.file, b.line)):
        where = f"{banner.file}:{banner.line}: {banner.id}"
        for signal in sorted(banner.trigger.signals - detected):
            problems.append(f"{where}: no rule of the pack detects signal {signal!r}")
        texts = [("text", banner.text)]
        if banner.adult_text:
            texts.append(("adult_text", banner.adult_text))
        texts.extend((f"variants.{v.id}.text", v.text) for v in banner.variants)
        for key, text in texts:
            have = {locale.split("-")[0] for locale in text}
            missing = sorted(languages - have)
            if missing:
                problems.append(
                    f"{where}: `{key}` has no text in the pack's language(s) {', '.join(missing)}"
                )
    return problems
