"""Example chat service, browser page and scripted bots used by the ChatGuard demo and tests."""
