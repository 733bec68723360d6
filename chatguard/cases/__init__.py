"""Cases: escalations grouped for moderators, the queue, actions, reports, webhooks.

``model`` is pure (the workflow); ``book`` keeps cases in the store and is the
escalation sink; ``actions`` carries moderator actions into the live chat;
``report`` shapes the law-enforcement report; ``webhooks`` tells outside
systems about new cases.
"""
