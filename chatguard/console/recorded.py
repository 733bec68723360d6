"""The flagged messages an instance without an evidence log still remembers.

What it owns: a ``ConversationSource`` over the ``RecordingSink`` that keeps
the most recent capture requests in memory when no evidence log is
configured, so the case page can show the flagged messages with the matched
spans highlighted.

Invariants: it reads only what the bounded ``RecordingSink`` holds (the
triggering messages, not their context — context needs the evidence log);
spans come from the policy's matches, which index the original text; at most
``limit`` messages per conversation, oldest first.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..steps.handoff import RecordingSink
from .seams import ExcerptMessage

DEFAULT_LIMIT = 50


class RecordedConversations:
    def __init__(self, recorded: RecordingSink, limit: int = DEFAULT_LIMIT) -> None:
        self.recorded = recorded
        self.limit = limit

    async def excerpt(self, conversation: str, record_ids: Sequence[str]) -> list[ExcerptMessage]:
        out: list[ExcerptMessage] = []
        for request in list(self.recorded.captures):
            event = request.event
            if request.conversation != conversation or event is None or event.text is None:
                continue
            spans = tuple(
                (start, end, match.rule_id)
                for match in (request.assessment.matches if request.assessment else ())
                if not match.shadow
                for start, end in match.spans
            )
            out.append(
                ExcerptMessage(request.at, request.sender or "?", event.text, spans, flagged=True)
            )
        out.sort(key=lambda m: m.at)
        return out[-self.limit :]
