"""What to check, per alarm kind: the advice at the end of an alarm's email."""

from __future__ import annotations

from failover_did.alerts.alarm import Kind

ADVICE: dict[Kind, tuple[str, ...]] = {
    Kind.UNREACHABLE: (
        "Is the PBX (or the phone behind the destination) up and registered? Look at its own status page.",
        "Can it be reached from the internet on its SIP port (5060 UDP/TCP, 5061 TLS)? Check firewall, NAT, "
        "public IP and DNS changes.",
        "Run `failover-did probe <target>` from a machine outside your network to see what it answers: a SIP "
        "code (503, 486) means it answered but refused; timeout, refused or dns means nothing answers.",
        "Meanwhile calls skip the down destination and ring the next tier; once it answers the health checks "
        "again it is dialed first again, with nothing for you to do.",
    ),
    Kind.UNVERIFIED: (
        "Nothing is skipped: a destination the prober has never reached is dialed as usual. But a real outage "
        "there is only found by failing calls, not ahead of them.",
        "If the PBX has a firewall, allow the probe's source address (where the health checker's SIP OPTIONS "
        "and health-URL requests come from) on the port it probes (SIP: 5060 UDP/TCP, 5061 TLS).",
        "Or give the tier a `health:` URL the prober can reach, or set `probe: false` on it (live calls are "
        "then its only evidence), and run `failover-did rules apply`.",
        "`failover-did probe <target>` shows what a probe gets; `failover-did status` lists every unverified "
        "destination with this advice.",
    ),
    Kind.FAILOVER: (
        "Calls are reaching a failover tier: see the reason column of the events (busy, timeout, a SIP code, "
        "down) for why the primary did not take them.",
        "down or 5xx: is the PBX up? See whether a 'destination unreachable' alert came with this one.",
        "busy or timeout: is anyone staffing the primary, and are the ring timeouts long enough? "
        "`failover-did rules show <number>` shows the cascade.",
        "Some carriers charge a dual-billing fee when failover triggers more than N times a month.",
    ),
    Kind.WEBHOOK_ERRORS: (
        "Look at the VoiceFunction's logs (the log group ending in -voice, the stack's VoiceLogGroupName "
        "output) for the error and its traceback.",
        "Was something deployed just before? Deploy the previous version again if so.",
        "Are the DynamoDB tables and the SSM auth-token parameter there, and may the function read them?",
        "Meanwhile Twilio plays the number's Voice Fallback URL (the static cascade) if one is set, "
        "else an error message: `failover-did twilio attach <number> --dry-run` shows what is set.",
    ),
    Kind.API_5XX: (
        "5xx from the API usually mean the voice function failed, timed out or was throttled: see the "
        "Errors and Duration of the voice function on the dashboard.",
        "The API is throttled at 100 requests/s (bursts of 200); a flood of requests can use that up.",
        "Twilio fetches the number's Voice Fallback URL for those calls if one is set.",
    ),
    Kind.SIGNATURES: (
        "Is the auth token in SSM (the TwilioAuthTokenParameterName parameter) the account's current token? "
        "A token rotated in the Twilio Console makes every real call fail the check.",
        "Was the Voice URL changed (custom domain, path, PublicBaseUrl)? Twilio signs the exact URL it calls.",
        "If neither: someone is sending forged requests to the endpoint. They get 403 and nothing is dialed; "
        "the API's throttling limits what they cost. If it goes on, put CloudFront with AWS WAF in front of "
        "the API (HTTP APIs take no WAF of their own) and set PublicBaseUrl to its address.",
    ),
    Kind.BUDGET: (
        "Some carriers charge a dual-billing fee when failover triggers more than N times a month: check your "
        "carrier's terms.",
        "Find why calls fail over (the events below, the failover and unreachable alerts) and fix the primary.",
        "If this many failovers is expected, raise the number's monthly_failover_budget in the rules file and "
        "run `failover-did rules apply`.",
    ),
    Kind.HEALTH_CHECKER: (
        "Look at the HealthCheckFunction's logs (the log group ending in -health) for errors or timeouts.",
        "Is its EventBridge schedule (HealthCheckSchedule) enabled, and is the function throttled or out of "
        "concurrency?",
        "Until it runs again, a dead destination is not skipped: each call rings it first and waits for its "
        "timeout before failing over.",
    ),
    Kind.UNKNOWN: ("Open the alarm in the CloudWatch console (link below) to see its metric and history.",),
}
