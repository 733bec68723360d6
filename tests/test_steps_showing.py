"""Showing a banner to one person: their language, their variant."""

from __future__ import annotations

from chatguard.effectiveness import assign_variant
from tests.support.relay import GuardFactory
from tests.support.timing import eventually
from tests.test_steps_speedbumps import connect, dm, guarded, recv_type


async def test_a_recipient_reads_a_banner_in_their_own_language(
    chat_service, make_guard: GuardFactory, test_pack
) -> None:
    guard = await guarded(make_guard, chat_service.url, test_pack)
    amy, bob = await connect(guard, "amy", 13, locale="es-MX"), await connect(guard, "bob", 41)
    try:
        await eventually(lambda: len(guard.relay.sessions) == 2)
        await dm(bob, "amy", "add me on snap")
        banner = await recv_type(amy, "chatguard.banner")
        assert banner["text"] == "Alguien te pide hablar en otra aplicación."
    finally:
        await amy.close()
        await bob.close()


async def test_a_sender_always_sees_their_assigned_variant(
    chat_service, make_guard: GuardFactory, test_pack
) -> None:
    banners = test_pack[1] / "test.yaml"
    text = banners.read_text(encoding="utf-8").replace(
        "      en: Asking a child for images is a crime.\n",
        "      en: Asking a child for images is a crime.\n"
        "    variants:\n"
        "      - {id: law, text: {en: It is a crime.}}\n"
        "      - {id: trace, text: {en: It is recorded.}}\n",
    )
    banners.write_text(text, encoding="utf-8")
    guard = await guarded(make_guard, chat_service.url, test_pack)
    expected = assign_variant("bob", "deterrence_image_request", [("law", 1.0), ("trace", 1.0)])
    wording = {"law": "It is a crime.", "trace": "It is recorded."}[expected]
    amy, bob = await connect(guard, "amy", 12), await connect(guard, "bob", 45)
    try:
        for ask in ("send me a pic", "send me a selfie"):
            await dm(bob, "amy", ask)
            assert (await recv_type(bob, "chatguard.banner"))["text"] == wording
        shown = guard.metrics.registry.get_sample_value(
            "chatguard_banner_impressions_total",
            {
                "banner": "deterrence_image_request",
                "variant": expected,
                "audience": "sender",
                "trigger": "signal:image_request",
            },
        )
        assert shown == 2.0
    finally:
        await amy.close()
        await bob.close()
