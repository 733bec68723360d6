"""The banner catalogue: what a speed bump says, to whom, in which language.

What it owns: the ``Banner`` values T&S staff write in ``banners/*.yaml``
(text per locale, adult wording, variants for A/B tests, triggers, caps),
the help resources of ``banners/resources.yaml``, and rendering a banner's
text for one viewer (locale, age band, variant, placeholders). Loading the
files is ``banner_files.py``; checking them against a pack is
``banner_lint.py``.

Invariants:

* A catalogue with any error is refused as a whole (``BannerError`` naming
  file, line and banner); the previous catalogue stays in force.
* Every banner has English text; a locale without its own text falls back
  to the configured default locale, then to English.
* Rendering never fails on a loaded catalogue: placeholders were checked at
  load, and ``{rule}`` renders only when the banner allows it
  (``reveal_rule``), so a sender is never taught which rule to dodge.
* Pure: no I/O, no clock.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .events import Severity

FALLBACK_LOCALE = "en"
#: Placeholders a banner text may use; what each says is in banners/README.md.
PLACEHOLDERS = frozenset({"report", "resources", "other", "room", "rule"})
#: Events (besides policy signals and actions) that can show a banner.
EVENTS = frozenset({"room_entry", "first_contact", "report"})
#: How an impression is measured (effectiveness.OUTCOMES).
MEASURES = frozenset({"prompt", "warning", "deterrence", "notice"})
#: What ``{report}`` says: how to report from a chat-only client.
REPORT_HINT = "/report"
DEFAULT_VARIANT = "default"


class BannerError(ValueError):
    """The catalogue is invalid; the message lists every problem."""


@dataclass(frozen=True, slots=True)
class Variant:
    """One wording of a banner in an A/B test; ``weight`` is its share."""

    id: str
    weight: float
    text: Mapping[str, str]
    adult_text: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Trigger:
    """What shows a banner, besides a pack action naming it.

    ``signals`` and ``actions`` are documentation that lint checks against
    the pack; ``events`` (``room_entry``, ``first_contact``, ``report``) are
    acted on by the sidecar itself.
    """

    signals: frozenset[str] = frozenset()
    actions: frozenset[str] = frozenset()
    events: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Banner:
    id: str
    purpose: str
    severity: Severity
    text: Mapping[str, str]
    file: str = ""
    line: int = 0
    audience: str | None = None
    trigger: Trigger = field(default_factory=Trigger)
    ages: frozenset[str] | None = None  # viewers' age bands; None = everyone
    reveal_rule: bool = False
    resources: tuple[str, ...] = ()  # resource kinds for {resources}
    adult_text: Mapping[str, str] = field(default_factory=dict)
    variants: tuple[Variant, ...] = ()
    cap: int | None = None  # most impressions per user per cap_window
    cap_window: float | None = None
    cooldown: float | None = None
    measure: str | None = None  # impression kind for effectiveness; None = inferred

    def text_for(
        self,
        locale: str | None,
        default_locale: str = FALLBACK_LOCALE,
        *,
        adult: bool = False,
        variant: str | None = None,
    ) -> str:
        """The template for a viewer: variant, then adult wording, then locale."""
        texts, adult_texts = self.text, self.adult_text
        for v in self.variants:
            if v.id == variant:
                texts, adult_texts = v.text, v.adult_text or adult_texts
        if adult and adult_texts:
            texts = adult_texts
        return texts[pick_locale(texts, locale, default_locale)]

    def locale_for(self, locale: str | None, default_locale: str = FALLBACK_LOCALE) -> str:
        return pick_locale(self.text, locale, default_locale)


def pick_locale(texts: Mapping[str, str], locale: str | None, default_locale: str) -> str:
    for candidate in (locale, (locale or "").split("-")[0], default_locale, FALLBACK_LOCALE):
        if candidate and candidate in texts:
            return candidate
    return next(iter(texts))


@dataclass(frozen=True, slots=True)
class Resource:
    """A real help service: a helpline, a reporting hotline, help for offenders."""

    id: str
    kind: str
    name: str
    contact: str
    locales: frozenset[str]
    regions: frozenset[str] = frozenset()
    url: str = ""

    def line(self) -> str:
        return f"{self.name}: {self.contact}" + (f" ({self.url})" if self.url else "")


@dataclass(frozen=True, slots=True)
class Catalogue:
    banners: Mapping[str, Banner]
    resources: tuple[Resource, ...] = ()
    locales: frozenset[str] = frozenset()  # locales every banner must have

    def get(self, banner_id: str) -> Banner | None:
        return self.banners.get(banner_id)

    def for_event(self, event: str) -> tuple[Banner, ...]:
        return tuple(b for b in self.banners.values() if event in b.trigger.events)

    def resources_for(
        self, kinds: Iterable[str], locale: str, region: str | None = None
    ) -> tuple[Resource, ...]:
        """Resources of ``kinds`` for a viewer: their region if known, else their language."""
        language = locale.split("-")[0]
        out: list[Resource] = []
        for kind in kinds:
            of_kind = [r for r in self.resources if r.kind == kind]
            chosen = [r for r in of_kind if region and region.upper() in r.regions]
            if not chosen:
                chosen = [r for r in of_kind if locale in r.locales]
            if not chosen:
                chosen = [r for r in of_kind if language in r.locales]
            out.extend(chosen)
        return tuple(out)


@dataclass(frozen=True, slots=True)
class Rendered:
    """A banner's text for one viewer, and which variant and locale it was."""

    banner: Banner
    text: str
    variant: str
    locale: str


def render(
    catalogue: Catalogue,
    banner: Banner,
    *,
    locale: str | None,
    default_locale: str,
    adult: bool = False,
    variant: str = DEFAULT_VARIANT,
    region: str | None = None,
    other: str | None = None,
    room: str | None = None,
    rule: str | None = None,
) -> Rendered:
    chosen = banner.locale_for(locale, default_locale)
    template = banner.text_for(locale, default_locale, adult=adult, variant=variant)
    resources = catalogue.resources_for(banner.resources, locale or chosen, region)
    values = {
        "report": REPORT_HINT,
        "resources": "; ".join(r.line() for r in resources),
        "other": other or "",
        "room": room or "",
        "rule": (rule or "") if banner.reveal_rule else "",
    }
    text = string.Formatter().vformat(template, (), values)
    return Rendered(banner, " ".join(text.split()), variant, chosen)


def placeholders(template: str) -> list[str]:
    """The placeholder names in a template; raises ValueError on bad braces."""
    return [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
