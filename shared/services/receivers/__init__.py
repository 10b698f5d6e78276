"""Receivers: consent and contact — opt-outs, one-click unsubscribe, the WhatsApp
24-hour window."""
