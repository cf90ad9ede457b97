"""What Prometheus counts beyond django-prometheus's requests and queries."""

from prometheus_client import Counter

TRANSITIONS = Counter(
    "jobs_transitions",
    "Jobs moved (outcome: the transition's past tense) or refused (outcome: the error code), "
    "by transition and channel.",
    ["transition", "channel", "outcome"],
)

WEBHOOK_DELIVERIES = Counter(
    "jobs_webhook_deliveries",
    "Webhook delivery attempts by outcome: succeeded, retrying (will be tried again), failed.",
    ["outcome"],
)
