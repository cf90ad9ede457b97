"""Webhook endpoints (with a test event) and their deliveries (with Resend)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from jobs import tasks, webhooks
from jobs.events import EVENT_TYPES
from jobs.models import Event, WebhookDelivery, WebhookEndpoint


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(max_length=2000, assume_scheme="https", help_text="Where to POST events.")
    event_types = forms.MultipleChoiceField(
        choices=[(t, t) for t in EVENT_TYPES],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every event type.",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "event_types", "is_active", "description"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if not self.errors:
            webhooks.check_endpoint(
                WebhookEndpoint(url=cleaned["url"], event_types=cleaned["event_types"])
            )
        return cleaned


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = ["url", "types", "is_active", "created_at"]
    list_filter = ["is_active"]
    readonly_fields = ["secret_hint", "created_at"]
    actions = ["send_test_event"]

    @admin.display(description="event types")
    def types(self, endpoint: WebhookEndpoint) -> str:
        return ", ".join(endpoint.event_types) or "all"

    @admin.display(description="secret")
    def secret_hint(self, endpoint: WebhookEndpoint) -> str:
        # Shown whole once, when the endpoint is added; afterwards only enough to recognise it.
        return f"{endpoint.secret[:10]}…{endpoint.secret[-4:]}" if endpoint.pk else "(made on save)"

    def save_model(self, request: HttpRequest, obj: WebhookEndpoint, form: Any, change: bool):
        super().save_model(request, obj, form, change)
        if not change:
            self.message_user(
                request,
                f"Its signing secret, shown only now: {obj.secret} — give it to the receiver, "
                "which verifies each delivery with it.",
                messages.WARNING,
            )

    @admin.action(description="Send a test event")
    def send_test_event(self, request: HttpRequest, queryset: QuerySet) -> None:
        now = timezone.now()
        for endpoint in queryset:
            event = Event.objects.create(
                type="webhook.test",
                timestamp=now,
                data={"message": "A test event from the jobs admin.", "endpoint": endpoint.pk},
                fanned_out=True,
            )
            delivery = WebhookDelivery.objects.create(endpoint=endpoint, event=event)
            transaction.on_commit(lambda pk=delivery.pk: tasks.deliver.delay(pk))
        self.message_user(
            request,
            f"A test event is on its way to {queryset.count()} endpoint(s); "
            "see Webhook deliveries.",
            messages.SUCCESS,
        )


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = [
        "event_id",
        "event_type",
        "endpoint",
        "state",
        "attempts",
        "next_attempt_at",
        "last_status_code",
    ]
    list_filter = ["state", "endpoint"]
    list_select_related = ["event", "endpoint"]
    search_fields = ["event__public_id"]
    readonly_fields = [
        "endpoint",
        "event",
        "state",
        "attempts",
        "next_attempt_at",
        "leased_until",
        "last_status_code",
        "last_error",
        "created_at",
        "delivered_at",
    ]
    actions = ["resend"]

    @admin.display(description="event")
    def event_id(self, delivery: WebhookDelivery) -> str:
        return delivery.event.public_id

    @admin.display(description="type")
    def event_type(self, delivery: WebhookDelivery) -> str:
        return delivery.event.type

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Resend", permissions=["change"])
    def resend(self, request: HttpRequest, queryset: QuerySet) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        webhooks.resend(WebhookDelivery.objects.filter(pk__in=ids))
        transaction.on_commit(lambda: [tasks.deliver.delay(pk) for pk in ids])
        self.message_user(
            request, f"{len(ids)} delivery(ies) will be sent again.", messages.SUCCESS
        )
