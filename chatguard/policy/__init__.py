"""The policy engine: deciding what a chat message means for safety.

This package is pure: text and events in, findings out; no I/O and no clock
reads. Modules: ``normalise`` (takes the disguises off a message and keeps a
map back to what the user typed), ``model`` (the shared vocabulary),
``rules`` (loading rule files), ``safety`` (patterns that run in bounded
time), ``matcher`` (multi-pattern matching), ``risk`` (conversation state)
and ``engine`` (one message, start to finish). Nothing is re-exported here,
so ``chatguard.policy.normalise`` is always the module.
"""
