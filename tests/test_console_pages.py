"""The console's pages through the real app over loopback: the queue and its
filters, a case in context (highlighted spans, escaped text, participants),
one-click actions, the report view, analytics, and what each role sees."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

import aiohttp
import pytest

from chatguard.cases.model import Case, ModeratorAction
from chatguard.console.seams import ConsoleSeams, ExcerptMessage
from chatguard.stores import Sanction, SanctionKind
from tests.support.console import PASSWORD, ConsoleSite, SiteFactory
from tests.test_console_auth import page_csrf, sign_in


class Excerpts:
    """An in-memory implementation of the console's conversation source."""

    def __init__(self, messages: list[ExcerptMessage]) -> None:
        self.messages = messages

    async def excerpt(self, conversation: str, record_ids: Sequence[str]) -> list[ExcerptMessage]:
        return self.messages


async def signed_in(site: ConsoleSite, who: str = "mia") -> aiohttp.ClientSession:
    http, status = await sign_in(site, who, PASSWORD)
    assert status == 303
    return http


async def text(http: aiohttp.ClientSession, path: str, status: int = 200) -> str:
    async with http.get(path) as r:
        assert r.status == status, path
        return await r.text()


async def post(http: aiohttp.ClientSession, case: Case, what: str, **form: str) -> tuple[int, str]:
    csrf = await page_csrf(http, f"/console/cases/{case.id}")
    async with http.post(
        f"/console/cases/{case.id}/{what}", data={"csrf": csrf, **form}, allow_redirects=False
    ) as r:
        return r.status, r.headers.get("Location", "") or await r.text()


async def test_the_queue_lists_and_filters_cases(make_site: SiteFactory) -> None:
    site = await make_site()
    medium = await site.case("bob", "amy")
    high = await site.case("eve", "kim", severity="high", category="sextortion")
    http = await signed_in(site)
    page = await text(http, "/console/")
    assert page.index(f'data-case="{high.id}"') < page.index(f'data-case="{medium.id}"')
    assert 'data-count="open">2<' in page
    page = await text(http, "/console/?severity=high")
    assert high.id in page
    assert f'data-case="{medium.id}"' not in page
    page = await text(http, "/console/?status=bogus", status=400)
    assert "status" in page


async def test_a_case_page_shows_the_conversation_with_spans_highlighted(
    make_site: SiteFactory,
) -> None:
    flagged = "are your parents home? <b>secret</b>"
    source = Excerpts(
        [
            ExcerptMessage(1.0, "amy", "hi"),
            ExcerptMessage(2.0, "bob", flagged, ((4, 22, "en.risk.parents_home"),), True),
        ]
    )
    site = await make_site(seams=ConsoleSeams(conversations=source))
    case = await site.case()
    await site.store.put_sanction(
        Sanction("bob", SanctionKind.MUTE, "earlier", site.clock() + 600, "lea"),
        site.clock(),
    )
    http = await signed_in(site)
    page = await text(http, f"/console/cases/{case.id}")
    assert '<mark title="en.risk.parents_home">your parents home?</mark>' in page
    # Chat text is escaped, never markup.
    assert "&lt;b&gt;secret&lt;/b&gt;" in page
    assert "<b>secret</b>" not in page
    # Participants with their attested age bands and sanctions in force.
    assert re.search(r"<td>amy</td><td>minor</td>", page)
    assert re.search(r"<td>bob \(flagged\)</td><td>adult</td>", page)
    assert "mute for 10m" in page or "mute for 9m" in page
    # Which rules fired and why; the timeline.
    assert "risk_assessment, secrecy" in page
    assert "Rules matched in the messages shown: en.risk.parents_home" in page
    assert "risk&gt;=8" in page
    assert [a["via"] for a in site.audited("case.view")] == ["console"]


async def test_claim_and_mute_from_the_case_page(make_site: SiteFactory) -> None:
    site = await make_site()
    case = await site.case()
    http = await signed_in(site)
    status, location = await post(http, case, "claim")
    assert (status, location) == (303, f"/console/cases/{case.id}?msg=claimed")
    status, _ = await post(
        http, case, "actions", type="mute", target="bob", duration="900", reason="grooming"
    )
    assert status == 303
    page = await text(http, f"/console/cases/{case.id}?msg=done-mute")
    assert 'role="status">Done: mute.<' in page
    assert 'id="status">actioned<' in page
    sanctions = await site.store.sanctions("bob", site.clock())
    assert [s.kind for s in sanctions] == [SanctionKind.MUTE]


async def test_a_permanent_ban_and_a_note_from_the_page(make_site: SiteFactory) -> None:
    site = await make_site()
    case = await site.case()
    http = await signed_in(site)
    await post(http, case, "claim")
    status, _ = await post(
        http, case, "actions", type="ban", target="bob", duration="60", permanent="1"
    )
    assert status == 303
    bans = await site.store.sanctions("bob", site.clock())
    assert [(s.kind, s.until) for s in bans] == [(SanctionKind.BAN, None)]
    assert (await post(http, case, "notes", text="sent to T&S <now>"))[0] == 303
    page = await text(http, f"/console/cases/{case.id}")
    assert "sent to T&amp;S &lt;now&gt;" in page


async def test_a_refused_action_says_why(make_site: SiteFactory) -> None:
    site = await make_site()
    case = await site.case()
    http = await signed_in(site)
    status, page = await post(http, case, "actions", type="mute", target="bob", duration="")
    assert status == 400
    assert "duration" in page
    status, page = await post(http, case, "actions", type="warn", target="bob")
    assert status == 409
    assert "claim" in page


async def test_an_auditor_sees_no_action_forms_and_is_refused(make_site: SiteFactory) -> None:
    site = await make_site()
    case = await site.case()
    http = await signed_in(site, "aud")
    page = await text(http, f"/console/cases/{case.id}")
    assert "can read this case but not act" in page
    assert 'action="/console/cases/' not in page.replace("/report", "")
    status, page = await post(http, case, "claim")
    assert status == 403
    assert "auditor" in page


async def test_another_moderators_claim_hides_the_actions(make_site: SiteFactory) -> None:
    site = await make_site()
    case = await site.case()
    await site.book.claim(case.id, "max")
    http = await signed_in(site)
    page = await text(http, f"/console/cases/{case.id}")
    assert "Claimed by max" in page
    assert (await post(http, case, "actions", type="kick", target="bob"))[0] == 403


async def test_the_report_view_and_downloads(make_site: SiteFactory) -> None:
    site = await make_site()
    case = await site.case()
    http = await signed_in(site, "aud")
    page = await text(http, f"/console/cases/{case.id}/report")
    assert "Online Enticement of Children for Sexual Acts" in page
    assert "incomplete" in page
    assert "no evidence messages loaded" in page
    async with http.get(f"/console/cases/{case.id}/report.xml") as r:
        assert r.status == 200
        assert r.content_type == "application/xml"
        assert "attachment" in r.headers["Content-Disposition"]
    async with http.get(f"/console/cases/{case.id}/report.json") as r:
        assert r.status == 200
        assert (await r.json())["report"]["reporter"]["caseId"] == case.id
    assert len(site.audited("report.view")) == 3
    async with http.get(f"/console/cases/{case.id}/evidence") as r:
        assert r.status == 501
        assert "no evidence log" in await r.text()


async def test_analytics_page_for_leads_only(make_site: SiteFactory) -> None:
    site = await make_site()
    await site.case()
    lead = await signed_in(site, "lea")
    page = await text(lead, "/console/analytics")
    assert "<title>Analytics — ChatGuard console</title>" in page
    assert page.count('id="webhooks"') == 1
    assert "grooming" in page
    assert "Not available" in page
    assert "No case webhook is configured" in page
    mod = await signed_in(site, "mia")
    assert "lead" in await text(mod, "/console/analytics", status=403)
    assert 'href="/console/analytics"' not in await text(mod, "/console/")


async def test_unknown_case_is_a_404_page(make_site: SiteFactory) -> None:
    site = await make_site()
    http = await signed_in(site)
    assert "no case" in await text(http, "/console/cases/nope", status=404)


async def test_live_counts_endpoint_and_script(make_site: SiteFactory) -> None:
    site = await make_site()
    await site.case(severity="high")
    http = await signed_in(site)
    async with http.get("/console/counts.json") as r:
        counts = await r.json()
    assert counts["open"] == 1
    assert counts["by_severity"]["high"] == 1
    script = await text(http, "/console/static/console.js")
    assert "data-count" in script


async def test_evidence_content_never_reaches_logs_or_audit(
    make_site: SiteFactory, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "MARKER-do-not-log-4711"
    source = Excerpts([ExcerptMessage(1.0, "bob", f"text me {secret}", ((0, 7, "r"),), True)])
    site = await make_site(seams=ConsoleSeams(conversations=source))
    case = await site.case()
    caplog.set_level(logging.DEBUG)
    http = await signed_in(site)
    assert secret in await text(http, f"/console/cases/{case.id}")
    await post(http, case, "claim")
    await post(http, case, "notes", text=f"note {secret}")
    await text(http, f"/console/cases/{case.id}/report")
    assert secret not in caplog.text
    assert PASSWORD not in caplog.text
    assert all(secret not in repr(e) for _, e in site.audit.entries)


class Banners:
    """An in-memory implementation of the console's banner-history interface."""

    async def shown(self, user: str, limit: int) -> list[dict[str, Any]]:
        if user != "amy":
            return []
        return [
            {"banner": "off_platform_warning", "at": 2.0, "outcome": "cancelled"},
            {"banner": "stay_safe_reminder", "at": 1.0, "outcome": None},
        ][:limit]


async def test_participants_show_the_banners_they_were_shown(make_site: SiteFactory) -> None:
    plain = await make_site()
    case = await plain.case()
    page = await text(await signed_in(plain), f"/console/cases/{case.id}")
    assert "not available" in page
    site = await make_site(seams=ConsoleSeams(banner_history=Banners()))
    case = await site.case()
    page = await text(await signed_in(site), f"/console/cases/{case.id}")
    assert "off_platform_warning (cancelled), stay_safe_reminder (no outcome)" in page
    assert re.search(r"<td>bob \(flagged\)</td>.*?<td>none</td></tr>", page, re.DOTALL)


async def test_every_console_response_forbids_framing_and_caching(make_site: SiteFactory) -> None:
    site = await make_site()
    case = await site.case()
    http = await signed_in(site)
    for path in ("/console/login", "/console/", f"/console/cases/{case.id}", "/console/nope"):
        async with http.get(path, allow_redirects=False) as r:
            assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"], path
            assert r.headers["X-Frame-Options"] == "DENY"
            assert r.headers["Cache-Control"] == "no-store"
    async with site.client().get("/api/cases", headers={"Authorization": "Bearer token-mia"}) as r:
        assert r.headers["Cache-Control"] == "no-store"


async def test_participants_show_their_earlier_cases(make_site: SiteFactory) -> None:
    site = await make_site()
    first = await site.case("bob", "amy")
    await site.book.claim(first.id, "max")
    await site.book.act(first.id, "max", ModeratorAction("dismiss", reason="banter"))
    second = await site.case("bob", "amy")
    other = await site.case("eve", "kim")
    assert second.id != first.id
    page = await text(await signed_in(site), f"/console/cases/{second.id}")
    row = re.search(r"<td>bob \(flagged\)</td>.*?</tr>", page, re.DOTALL)
    assert row is not None
    assert f'href="/console/cases/{first.id}">{first.id}</a> (closed)' in row.group(0)
    assert other.id not in row.group(0)


async def test_a_crafted_link_cannot_put_words_on_a_page(make_site: SiteFactory) -> None:
    site = await make_site()
    http = await signed_in(site)
    page = await text(http, "/console/?msg=Your+account+is+locked,+call+555-0100")
    assert "555-0100" not in page
    assert 'role="status"' not in page
