"""Finding quotations in a message, and the message without them."""

from __future__ import annotations

from chatguard.policy.quotations import quoted_regions, without_quotations


def test_quoted_regions_pair_marks_and_ignore_unclosed_ones() -> None:
    assert quoted_regions('a "b" c \u201cd\u201d \u00abe\u00bb \u201ef\u201c "g') == [
        (3, 4),
        (9, 10),
        (13, 14),
        (17, 18),
    ]
    assert without_quotations('say "x" now') == "say  .  now"
    assert without_quotations('"only a quotation"') is None
    assert without_quotations("no quotation") is None
