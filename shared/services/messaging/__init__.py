"""Messaging: a message document's life.

Intake (one or a batch), the rules a message must meet on its channel, the outbox
of jobs and events, fallback, and reading, listing and cancelling.
"""
