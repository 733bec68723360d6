"""MemoryAudit: ids are unique and in order, and the bound holds."""

from __future__ import annotations

from chatguard.audit import AuditEntry, MemoryAudit


async def test_entries_get_increasing_ids_and_are_kept_in_order() -> None:
    audit = MemoryAudit()
    first = await audit.audit(AuditEntry(1.0, "mod-a", "case.claim", "case-1"))
    second = await audit.audit(AuditEntry(2.0, "mod-b", "evidence.export", "case-1", "subpoena"))
    assert first != second
    assert [entry_id for entry_id, _ in audit.entries] == [first, second]
    assert audit.entries[1][1].reason == "subpoena"


async def test_only_the_newest_entries_are_kept() -> None:
    audit = MemoryAudit(keep=3)
    ids = [await audit.audit(AuditEntry(float(i), "a", "x", str(i))) for i in range(5)]
    assert [entry_id for entry_id, _ in audit.entries] == ids[2:]
