"""Random regexes for property tests: sequences of atoms and groups of
alternatives, each optionally quantified (anchors and lookarounds never are)."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import strategies as st

_UNQUANTIFIED = (r"\b", r"\B", "^", "$")
_QUANTIFIERS = ["", "", "?", "*", "+", "{1,2}", "{2}", "{0,3}"]


def regexes(atoms: Sequence[str], depth: int = 2) -> st.SearchStrategy[str]:
    """Regexes built from ``atoms``, groups nested at most ``depth`` deep."""

    @st.composite
    def build(draw: st.DrawFn, depth: int) -> str:
        parts = []
        for _ in range(draw(st.integers(1, 3))):
            if depth and draw(st.booleans()):
                inner = [draw(build(depth - 1)) for _ in range(draw(st.integers(1, 3)))]
                part = "(?:" + "|".join(inner) + ")"
            else:
                part = draw(st.sampled_from(list(atoms)))
            if part not in _UNQUANTIFIED and not part.startswith(("(?=", "(?<")):
                part += draw(st.sampled_from(_QUANTIFIERS))
            parts.append(part)
        return "".join(parts)

    return build(depth)
