"""Delivery: from the outbound queue to the provider and back.

Dispatch, pacing, pauses and failover, dead letters, provider callbacks, and the
receipts and inbound messages they report.
"""
