"""Outpost's own Python SDK (`outpost-sdk` on PyPI), unmodified, against Outrider."""

import time

import httpx
import pytest
from outpost_sdk import Outpost, errors, models
from standardwebhooks.webhooks import Webhook

from conftest import decode


def admin(server):
    return Outpost(api_key=server["key"], server_url=server["url"])


def wait(predicate, timeout=15.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_tenant_destination_publish_and_signed_delivery(server, sink):
    with admin(server) as outpost:
        tenant = outpost.tenants.upsert(tenant_id="acme", body={"metadata": {"plan": "pro"}})
        assert tenant.id == "acme"
        assert tenant.metadata == {"plan": "pro"}

        dest = outpost.destinations.create(
            tenant_id="acme",
            body=models.DestinationCreateWebhook(
                type="webhook", topics=["order.paid"], config=models.WebhookConfig(url=sink.url())
            ),
        )
        assert dest.type == "webhook"
        secret = dest.credentials.secret
        assert secret, "a signing secret is generated when none is given"

        listed = outpost.destinations.list(tenant_id="acme")
        assert [d.id for d in listed] == [dest.id]

        res = outpost.publish(request={"tenant_id": "acme", "topic": "order.paid", "data": {"order": 42}})
        assert res.duplicate is False
        assert res.destination_ids == [dest.id]

        request = sink.wait_for(1)[0]
        assert decode(request["body"]) == {"order": 42}
        assert request["headers"]["x-outpost-event-id"] == res.id

        again = outpost.publish(request={"id": res.id, "tenant_id": "acme", "topic": "order.paid", "data": {"order": 42}})
        assert again.duplicate is True

        event = outpost.events.get(event_id=res.id)
        assert event.id == res.id and event.topic == "order.paid"


def test_standard_webhooks_signature_verifies_with_the_reference_library(server, sink):
    with admin(server) as outpost:
        outpost.tenants.upsert(tenant_id="acme")
        dest = outpost.destinations.create(
            tenant_id="acme", body={"type": "webhook", "topics": "*", "config": {"url": sink.url()}}
        )
        # The SDK's typed WebhookConfig has no signature_mode (Outpost sets the mode per
        # server); Outrider sets it per destination, so switch it with a plain request.
        res = httpx.patch(
            f"{server['url']}/tenants/acme/destinations/{dest.id}",
            headers={"authorization": f"Bearer {server['key']}"},
            json={"config": {"signature_mode": "standard"}},
        )
        assert res.status_code == 200, res.text
        secret = dest.credentials.secret
        assert secret.startswith("whsec_")
        outpost.publish(request={"tenant_id": "acme", "topic": "user.created", "data": {"user": "u1"}})
        request = sink.wait_for(1)[0]
        headers = request["headers"]
        payload = Webhook(secret).verify(request["body"], headers)
        assert payload == {"user": "u1"}
        # A tampered body fails verification.
        with pytest.raises(Exception):
            Webhook(secret).verify(request["body"] + b" ", headers)


def test_failing_receiver_is_retried_and_attempts_are_listed(server, sink):
    sink.script = [500, 503]
    with admin(server) as outpost:
        outpost.tenants.upsert(tenant_id="acme")
        dest = outpost.destinations.create(
            tenant_id="acme", body={"type": "webhook", "topics": "*", "config": {"url": sink.url()}}
        )
        res = outpost.publish(request={"tenant_id": "acme", "topic": "t", "data": {"n": 1}})
        page = wait(lambda: (p := outpost.attempts.list(request={"event_id": res.id, "direction": "asc"})) and len(p.models or []) >= 3 and p)
        statuses = [a.status for a in page.models]
        assert [str(s.value if hasattr(s, "value") else s) for s in statuses] == ["failed", "failed", "success"]

        # Manual retry through the SDK creates one more attempt, marked manual.
        outpost.retry(request={"event_id": res.id, "destination_id": dest.id})
        page = wait(lambda: (p := outpost.attempts.list(request={"event_id": res.id, "direction": "asc"})) and len(p.models or []) >= 4 and p)
        assert page.models[-1].manual is True


def test_tenant_token_is_scoped_to_its_tenant(server, sink):
    with admin(server) as outpost:
        outpost.tenants.upsert(tenant_id="tenant-a")
        outpost.tenants.upsert(tenant_id="tenant-b")
        outpost.destinations.create(tenant_id="tenant-b", body={"type": "webhook", "topics": "*", "config": {"url": sink.url()}})
        token = outpost.tenants.get_token(tenant_id="tenant-a").token
    with Outpost(api_key=token, server_url=server["url"]) as as_a:
        assert as_a.destinations.list(tenant_id="tenant-a") == []
        with pytest.raises(errors.OutpostError) as refused:
            as_a.destinations.list(tenant_id="tenant-b")
        assert refused.value.raw_response.status_code in (401, 403)
