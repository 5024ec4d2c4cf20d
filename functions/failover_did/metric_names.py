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
STALE_RULE_SERVED = "StaleRuleServed"
STORE_UNAVAILABLE = "StoreUnavailable"
DESTINATION_DOWN = "DestinationDown"
DESTINATION_RECOVERED = "DestinationRecovered"
DESTINATIONS_DOWN = "DestinationsDown"
HEALTH_CHECK_RUNS = "HealthCheckRuns"
PASSIVE_FAILURES = "PassiveFailures"
FAILOVER_BUDGET_EXCEEDED = "FailoverBudgetExceeded"
