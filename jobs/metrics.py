"""What Prometheus counts beyond django-prometheus's requests and queries."""

from prometheus_client import Counter

TRANSITIONS = Counter(
    "jobs_transitions",
    "Jobs moved (outcome: the transition's past tense) or refused (outcome: the error code), "
    "by transition and channel.",
    ["transition", "channel", "outcome"],
)
