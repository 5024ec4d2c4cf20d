"""Missed-call notices: every call that ends missed (final message, voicemail, caller hung up while the
cascade rang) reaches the number's people by SMS and email through the one delivery path."""

from __future__ import annotations

from failover_did.notices.missed import missed_call, voicemail_transcribed

__all__ = ["missed_call", "voicemail_transcribed"]
