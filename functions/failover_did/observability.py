"""The process-wide logger and metrics (Powertools), shared by every handler."""

import warnings

from aws_lambda_powertools import Logger, Metrics

from failover_did.metric_names import NAMESPACE, SERVICE

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)

# Refused and hung-up requests legitimately emit no metric; Powertools would warn on each of them.
warnings.filterwarnings("ignore", message="No application metrics to publish")
