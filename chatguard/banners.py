"""The banner catalogue: what a speed bump says, in which language.

What it owns: loading ``banners/*.yaml`` into ``Banner`` values and choosing
a banner's text for a locale. Targeting, caps and variants build on this.

Invariants:

* A catalogue with any error is refused as a whole (``BannerError`` naming
  file and banner); the previous catalogue stays in force.
* Every banner has English text; a locale without its own text falls back
  to the configured default locale, then to English.
* Pure apart from reading the files at load.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .events import Severity

FALLBACK_LOCALE = "en"
_BANNER_KEYS = {"id", "purpose", "severity", "text"}


class BannerError(ValueError):
    """The catalogue is invalid; the message lists every problem."""


@dataclass(frozen=True, slots=True)
class Banner:
    id: str
    purpose: str
    severity: Severity
    text: Mapping[str, str]
    file: str = ""

    def text_for(self, locale: str | None, default_locale: str = FALLBACK_LOCALE) -> str:
        for candidate in (locale, (locale or "").split("-")[0], default_locale, FALLBACK_LOCALE):
            if candidate and candidate in self.text:
                return self.text[candidate]
        return next(iter(self.text.values()))


@dataclass(frozen=True, slots=True)
class Catalogue:
    banners: Mapping[str, Banner]

    def get(self, banner_id: str) -> Banner | None:
        return self.banners.get(banner_id)


def load_catalogue(directory: Path) -> Catalogue:
    problems: list[str] = []
    banners: dict[str, Banner] = {}
    paths = sorted(p for p in directory.rglob("*.yaml") if p.is_file())
    for path in paths:
        shown = str(path)
        try:
            data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            problems.append(f"{shown}: cannot load: {exc}")
            continue
        if not isinstance(data, dict) or not isinstance(data.get("banners"), list):
            problems.append(f"{shown}: expected a mapping with a `banners` list")
            continue
        for i, spec in enumerate(data["banners"]):
            where = f"{shown}: banners[{i}]"
            if not isinstance(spec, dict):
                problems.append(f"{where}: a banner must be a mapping")
                continue
            unknown = set(spec) - _BANNER_KEYS
            if unknown:
                problems.append(f"{where}: unknown key {sorted(unknown)[0]!r}")
            banner_id = spec.get("id")
            if not isinstance(banner_id, str) or not banner_id:
                problems.append(f"{where}: `id` must be a non-empty string")
                continue
            where = f"{shown}: {banner_id}"
            if banner_id in banners:
                problems.append(f"{where}: duplicate id (also in {banners[banner_id].file})")
            text = spec.get("text")
            if not isinstance(text, dict) or not all(
                isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in text.items()
            ):
                problems.append(f"{where}: `text` must map locales to non-empty text")
                continue
            if FALLBACK_LOCALE not in text:
                problems.append(f"{where}: `text` needs an `{FALLBACK_LOCALE}` entry")
            try:
                severity = Severity(spec.get("severity", "info"))
            except ValueError:
                problems.append(f"{where}: `severity` must be info, warning or critical")
                continue
            banners[banner_id] = Banner(
                banner_id, str(spec.get("purpose", "")), severity, dict(text), shown
            )
    if problems:
        raise BannerError("\n".join(problems))
    return Catalogue(banners)
