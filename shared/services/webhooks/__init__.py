"""Webhooks: subscriptions, fan-out from the events topic, delivery jobs, signed
attempts, replays and tests."""
