"""The policy pack in force, and swapping it for a new one while chat flows.

What it owns: loading the configured pack (and banner catalogue) into an
``Engine``, and reloading them on SIGHUP or when their files change.

Invariants:

* The swap is atomic: a message is assessed entirely by the old engine or
  entirely by the new one (``engine`` is read once per message).
* An invalid new pack or catalogue is refused: the old one stays in force,
  the error is logged (file, line, reason) and counted in
  ``chatguard_policy_reloads_total{outcome="refused"}``.
* Loading compiles patterns, which can take a while for large packs; it runs
  in a worker thread so the event loop never stalls.
* With ``settle_heap`` (the service sets it), a pack in force is kept out of
  the cyclic garbage collector's way: its tens of thousands of long-lived
  objects would otherwise be walked by every full collection, a tenth of the
  engine's time per message. The previous pack is released first, so a
  reload never strands one (``settle``).
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .banner_files import load_catalogue
from .banner_lint import check_against_pack
from .banners import BannerError, Catalogue
from .metrics import Metrics
from .policy.engine import Engine
from .policy.matcher import build_matcher
from .policy.model import Policy, Rule
from .policy.rules import PolicyError, load_policy

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Loaded:
    """One consistent generation: a pack, its engine, and the banners it uses."""

    policy: Policy
    engine: Engine
    catalogue: Catalogue
    rules: Mapping[str, Rule] = field(default_factory=dict)  # by id


def settle() -> None:
    """Move everything alive now into the collector's permanent generation
    (``gc.freeze``), after releasing what an earlier call froze and
    collecting what of it is garbage (an old pack no message reads any more).
    Objects frozen here that become garbage later are collected at the next
    call; those with no reference cycle are freed at once, as always."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


class LivePolicy:
    def __init__(
        self,
        policy_dir: Path,
        banners_dir: Path | None,
        metrics: Metrics,
        *,
        backend: str = "auto",
        cache_dir: Path | None = None,
        settle_heap: bool = False,
    ) -> None:
        self.policy_dir = policy_dir
        self.settle_heap = settle_heap
        self.banners_dir = banners_dir
        self.metrics = metrics
        self.backend = backend
        self.cache_dir = cache_dir
        self.current: Loaded | None = None
        self._fingerprint: tuple[tuple[str, int, int], ...] = ()
        self._lock = asyncio.Lock()

    def _load(self) -> Loaded:
        policy = load_policy(self.policy_dir, cache_dir=self.cache_dir)
        matcher = build_matcher(policy.rules, backend=self.backend, cache_dir=self.cache_dir)
        catalogue = load_catalogue(self.banners_dir) if self.banners_dir else Catalogue({})
        engine = Engine(policy, matcher)
        named = {
            str(a.params["banner"])
            for actions in [r.actions for r in policy.rules]
            + [t.actions for t in policy.thresholds]
            for a in actions
            if "banner" in a.params
        }
        # The direct triggers (sextortion, safeguarding) show banners too.
        for trigger in (engine.settings.sextortion, engine.settings.safeguarding):
            if trigger is not None and trigger.banner:
                named.add(trigger.banner)
        missing = sorted(b for b in named if catalogue.get(b) is None)
        if missing:
            where = self.banners_dir or "banners.directory (not set)"
            raise BannerError(f"{where}: the pack uses banners that are not there: {missing}")
        if self.banners_dir is not None:
            # Signals and languages: a catalogue that does not fit the pack
            # is refused like a broken one.
            problems = check_against_pack(catalogue, policy)
            if problems:
                raise BannerError("\n".join(problems))
        rules = {rule.id: rule for rule in policy.rules}
        return Loaded(policy, engine, catalogue, rules)

    def load_now(self) -> Loaded:
        """Load synchronously (at start-up); raises on an invalid pack."""
        fingerprint = self._scan()  # before loading: an edit during the load is seen later
        loaded = self._load()
        self.current = loaded
        self._fingerprint = fingerprint
        self.metrics.policy_reloads.labels(outcome="loaded").inc()
        if self.settle_heap:
            settle()
        return loaded

    async def reload(self) -> bool:
        """Load the pack again; True when the new one is in force."""
        async with self._lock:
            fingerprint = self._scan()
            try:
                loaded = await asyncio.to_thread(self._load)
            except (PolicyError, BannerError, OSError, ValueError) as exc:
                self._fingerprint = fingerprint  # don't retry until it changes again
                self.metrics.policy_reloads.labels(outcome="refused").inc()
                log.error("policy reload refused; the previous pack stays in force:\n%s", exc)
                return False
            self.current = loaded
            self._fingerprint = fingerprint
            self.metrics.policy_reloads.labels(outcome="loaded").inc()
            if self.settle_heap:
                # One full collection per reload (tens of milliseconds for
                # the default pack, on the event loop): rare, and the price
                # of never walking the pack again until the next one.
                settle()
            version, rules = loaded.policy.version[:12], len(loaded.policy.rules)
            log.info("policy %s loaded (%d rules)", version, rules)
            return True

    def _scan(self) -> tuple[tuple[str, int, int], ...]:
        """A cheap fingerprint of the files: names, sizes and modification times."""
        entries: list[tuple[str, int, int]] = []
        for root in (self.policy_dir, self.banners_dir):
            if root is None or not root.is_dir():
                continue
            for path in sorted(root.rglob("*.yaml")):
                try:
                    stat = path.stat()
                except OSError:
                    continue
                entries.append((str(path), stat.st_size, stat.st_mtime_ns))
        return tuple(entries)

    async def watch(self, interval: float) -> None:
        """Reload whenever the files change; runs until cancelled."""
        while True:
            await asyncio.sleep(interval)
            fingerprint = await asyncio.to_thread(self._scan)
            if fingerprint != self._fingerprint:
                await self.reload()
