"""The entry point the call log calls once per call that ended missed."""

from __future__ import annotations

import os
from datetime import datetime

from failover_did.alerts import delivery
from failover_did.alerts.delivery import NOTIFY_TOPIC_ENV, Notice
from failover_did.alerts.gsm import fit
from failover_did.call_record import CallRecord
from failover_did.observability import logger


def missed_call(record: CallRecord, now: datetime) -> None:
    """Tell the number's people about one missed call. Raises when SNS refuses the message."""
    if not record.missed or record.test:
        return
    topic_arn = os.environ.get(NOTIFY_TOPIC_ENV, "")
    text = f"Missed call from {record.caller} to {record.number}: {record.outcome.value}"
    notice = Notice(sms=fit(text), subject=fit(text, 99), email=text, about="missed-call")
    if not topic_arn:
        logger.warning("missed call not noticed: no notify topic", extra={"call_sid": record.call_sid})
        return
    delivery.publish(notice, topic_arn)
