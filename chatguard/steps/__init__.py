"""Pipeline steps that carry out the policy in a live session.

Each module is one step named in ``pipeline.ORDER``: ``policy`` assesses a
message and leaves the assessment in the event's findings; ``speedbumps``
(the ``banners`` step) shows banners, holds, redacts and blocks; ``handoff``
(the ``evidence`` and ``escalate`` steps) passes captures and escalations to
the parts that keep them.
"""
