"""CloudWatch metric names and the namespace they are emitted under: the one list that the code uses
and that the template's alarms are checked against.

Cost rule: every metric name + dimension set is a billed custom metric, so metrics carry only the
`service` dimension Powertools adds; the number, target and call go in the EMF record's properties.
"""

NAMESPACE = "FailoverDid"
SERVICE = "failover-did"

INCOMING_CALLS = "IncomingCalls"
FAILOVERS = "Failovers"
CALLS_ANSWERED = "CallsAnswered"
FINAL_REACHED = "FinalReached"
UNKNOWN_NUMBER = "UnknownNumber"
SIGNATURE_REJECTED = "SignatureRejected"
# A correctly signed request whose Twilio parameters are not in their documented form (a folded
# signature, or a format Twilio changed): refused with 400, so Twilio goes to the Voice Fallback URL.
MALFORMED_REQUESTS = "MalformedRequests"
STALE_RULE_SERVED = "StaleRuleServed"
STORE_UNAVAILABLE = "StoreUnavailable"
DESTINATION_DOWN = "DestinationDown"
DESTINATION_RECOVERED = "DestinationRecovered"
DESTINATIONS_DOWN = "DestinationsDown"
DESTINATION_UNVERIFIED = "DestinationUnverified"  # once per target the prober cannot reach
HEALTH_CHECK_RUNS = "HealthCheckRuns"
PASSIVE_FAILURES = "PassiveFailures"
FAILOVER_BUDGET_EXCEEDED = "FailoverBudgetExceeded"

# Opt-in breakdowns (template parameter DetailedMetrics): one low-cardinality dimension each, so at most
# 7 + 6 more billed metrics, and only for the hours they are published.
DETAILED_ENV = "DETAILED_METRICS"
FAILOVERS_BY_REASON = "FailoversByReason"  # reason: timeout busy failed sip-4xx sip-5xx sip-6xx down
DIAL_OUTCOMES = "DialOutcomes"  # outcome: answered busy no-answer failed canceled other
