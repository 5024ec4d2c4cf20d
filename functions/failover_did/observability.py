"""The process-wide logger and metrics (Powertools), shared by every handler."""

import os
import warnings

from aws_lambda_powertools import Logger, Metrics, single_metric
from aws_lambda_powertools.metrics import MetricUnit

from failover_did.metric_names import DETAILED_ENV, NAMESPACE, SERVICE

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)

# Refused and hung-up requests legitimately emit no metric; Powertools would warn on each of them.
warnings.filterwarnings("ignore", message="No application metrics to publish")


def count_by(name: str, dimension: str, value: str) -> None:
    """A count broken down by one low-cardinality dimension, when DETAILED_METRICS is on (each dimension
    value is a billed custom metric)."""
    if os.environ.get(DETAILED_ENV, "").lower() != "true":
        return
    with single_metric(
        name=name, unit=MetricUnit.Count, value=1, namespace=NAMESPACE, default_dimensions={"service": SERVICE}
    ) as metric:
        metric.add_dimension(name=dimension, value=value)
