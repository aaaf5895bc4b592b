"""AWS destinations (aws_sqs, aws_s3, aws_kinesis, aws_eventbridge) against a real moto
server, read back with boto3.

moto runs with IAM authentication switched on after setup, so every request a plugin sends
must carry a SigV4 signature that moto recomputes (with botocore) and accepts, by an
access key moto knows, allowed by its IAM policy. One test uses temporary credentials
(an assumed role: key, secret and session token); a wrong secret is refused.
"""

import json
import time
import uuid

import httpx
import pytest
from outpost_sdk import Outpost, models

from moto_support import REGION, moto_server, wait


@pytest.fixture(scope="module")
def moto():
    with moto_server() as m:
        yield m


def admin(server):
    return Outpost(api_key=server["key"], server_url=server["url"])


def api(server):
    return httpx.Client(
        base_url=server["url"], headers={"authorization": f"Bearer {server['key']}"}, timeout=10
    )


def attempts(server, event_id):
    with api(server) as client:
        res = client.get("/attempts", params={"event_id": event_id, "dir": "asc"})
        assert res.status_code == 200, res.text
        return res.json()["models"]


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def receive_one(sqs, queue_url):
    def poll():
        res = sqs.receive_message(
            QueueUrl=queue_url, MessageAttributeNames=["All"], WaitTimeSeconds=1
        )
        return res.get("Messages", [None])[0]

    return wait(poll, what=f"a message on {queue_url}")


def test_destination_types_follow_outpost(server):
    with api(server) as client:
        res = client.get("/destination-types")
        assert res.status_code == 200, res.text
        types = {t["type"]: t for t in res.json()}
    expected = {
        "aws_sqs": ["queue_url", "endpoint"],
        "aws_s3": ["bucket", "region", "key_template", "storage_class"],
        "aws_kinesis": ["stream_name", "region", "endpoint", "partition_key_template"],
        "aws_eventbridge": ["event_bus_name", "region", "endpoint"],
    }
    for type_id, outpost_keys in expected.items():
        assert type_id in types, sorted(types)
        keys = [f["key"] for f in types[type_id]["config_fields"]]
        assert all(k in keys for k in outpost_keys), (type_id, keys)
        credentials = [f["key"] for f in types[type_id]["credential_fields"]]
        assert credentials == ["key", "secret", "session"], (type_id, credentials)


def test_sqs_body_and_metadata_attributes_with_temporary_credentials(server, moto):
    sqs = moto.client("sqs")
    queue_url = sqs.create_queue(QueueName=unique("orders"))["QueueUrl"]
    with admin(server) as outpost:
        outpost.tenants.upsert(tenant_id="acme")
        dest = outpost.destinations.create(
            tenant_id="acme",
            body=models.DestinationCreateAWSSQS(
                type="aws_sqs",
                topics="*",
                # No endpoint: requests go to the queue URL's origin.
                config=models.AWSSQSConfig(queue_url=queue_url),
                credentials=models.AWSSQSCredentials(**moto.temporary),
                delivery_metadata={"env": "test"},
            ),
        )
        assert dest.type == "aws_sqs"
        res = outpost.publish(request={
            "tenant_id": "acme",
            "topic": "order.paid",
            "data": {"order": 42, "note": "café"},
            "metadata": {"source": "checkout"},
        })

    message = receive_one(sqs, queue_url)
    assert json.loads(message["Body"]) == {"order": 42, "note": "café"}
    attributes = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    assert attributes["event-id"] == res.id
    assert attributes["topic"] == "order.paid"
    assert attributes["source"] == "checkout"
    assert attributes["env"] == "test"
    assert int(attributes["timestamp"]) >= int(time.time()) - 60
    all_metadata = json.loads(attributes["metadata"])
    assert all_metadata == {k: v for k, v in attributes.items() if k != "metadata"}

    done = wait(lambda: [a for a in attempts(server, res.id) if a["status"] == "success"])
    assert done[0]["code"] == "200"
    assert '"MessageId"' in json.dumps(done[0]["response_data"])


def test_s3_object_at_templated_key_with_metadata(server, moto):
    s3 = moto.client("s3")
    bucket = unique("events")
    s3.create_bucket(Bucket=bucket)
    with api(server) as client:
        assert client.put("/tenants/acme").status_code in (200, 201)
        res = client.post("/tenants/acme/destinations", json={
            "type": "aws_s3",
            "topics": ["order.*"],
            "config": {
                "bucket": bucket,
                "region": REGION,
                "endpoint": moto.endpoint,
                "key_template": "{{event.topic}}/{{metadata.customer}}/{{time.year}}/{{event.id}}.json",
                "storage_class": "standard_ia",
            },
            "credentials": moto.user,
        })
        assert res.status_code == 201, res.text
        published = client.post("/publish", json={
            "tenant_id": "acme",
            "topic": "order.paid",
            "data": {"order": 7, "lines": [1, 2]},
            "metadata": {"customer": "c-7"},
        })
        assert published.status_code == 202, published.text
        event_id = published.json()["id"]

    year = time.strftime("%Y", time.gmtime())
    key = f"order.paid/c-7/{year}/{event_id}.json"
    obj = wait(lambda: _get_object(s3, bucket, key), what=f"s3://{bucket}/{key}")
    assert json.loads(obj["Body"].read()) == {"order": 7, "lines": [1, 2]}
    assert obj["ContentType"] == "application/json"
    assert obj["StorageClass"] == "STANDARD_IA"
    assert obj["Metadata"]["event-id"] == event_id
    assert obj["Metadata"]["topic"] == "order.paid"
    assert obj["Metadata"]["customer"] == "c-7"
    done = wait(lambda: [a for a in attempts(server, event_id) if a["status"] == "success"])
    assert done[0]["response_data"]["body"]["key"] == key


def _get_object(s3, bucket, key):
    try:
        return s3.get_object(Bucket=bucket, Key=key)
    except s3.exceptions.NoSuchKey:
        return None


def test_kinesis_record_with_templated_partition_key(server, moto):
    kinesis = moto.client("kinesis")
    stream = unique("events")
    kinesis.create_stream(StreamName=stream, ShardCount=1)
    wait(lambda: kinesis.describe_stream(StreamName=stream)["StreamDescription"]["StreamStatus"] == "ACTIVE")
    with admin(server) as outpost:
        outpost.tenants.upsert(tenant_id="acme")
        outpost.destinations.create(
            tenant_id="acme",
            body=models.DestinationCreateAWSKinesis(
                type="aws_kinesis",
                topics="*",
                config=models.AWSKinesisConfig(
                    stream_name=stream,
                    region=REGION,
                    endpoint=moto.endpoint,
                    partition_key_template="{{data.customer_id | event.id}}",
                ),
                credentials=models.AWSKinesisCredentials(**moto.user),
            ),
        )
        with_customer = outpost.publish(request={
            "tenant_id": "acme", "topic": "cart.updated",
            "data": {"customer_id": "cust-9", "items": 3}, "metadata": {"channel": "web"},
        })
        without = outpost.publish(request={
            "tenant_id": "acme", "topic": "cart.updated", "data": {"items": 0},
        })

    shard = kinesis.describe_stream(StreamName=stream)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(
        StreamName=stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records = []

    def poll():
        nonlocal iterator
        out = kinesis.get_records(ShardIterator=iterator)
        iterator = out["NextShardIterator"]
        records.extend(out["Records"])
        return len(records) >= 2

    wait(poll, what="two Kinesis records")
    by_event = {json.loads(r["Data"])["metadata"]["event-id"]: r for r in records}
    first = by_event[with_customer.id]
    assert first["PartitionKey"] == "cust-9"
    payload = json.loads(first["Data"])
    assert payload["data"] == {"customer_id": "cust-9", "items": 3}
    assert payload["metadata"]["topic"] == "cart.updated"
    assert payload["metadata"]["channel"] == "web"
    assert by_event[without.id]["PartitionKey"] == without.id, "falls back to the event id"


def test_eventbridge_rule_routes_events_to_sqs(server, moto):
    events = moto.client("events")
    sqs = moto.client("sqs")
    bus = unique("orders-bus")
    events.create_event_bus(Name=bus)
    queue_url = sqs.create_queue(QueueName=unique("from-bus"))["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    events.put_rule(
        Name="paid-orders",
        EventBusName=bus,
        EventPattern=json.dumps({"source": ["outrider"], "detail-type": ["order.paid"]}),
    )
    events.put_targets(Rule="paid-orders", EventBusName=bus, Targets=[{"Id": "queue", "Arn": queue_arn}])
    with admin(server) as outpost:
        outpost.tenants.upsert(tenant_id="acme")
        outpost.destinations.create(
            tenant_id="acme",
            body=models.DestinationCreateAWSEventBridge(
                type="aws_eventbridge",
                topics="*",
                config=models.AWSEventBridgeConfig(
                    region=REGION, event_bus_name=bus, endpoint=moto.endpoint
                ),
                credentials=models.AWSEventBridgeCredentials(**moto.temporary),
            ),
        )
        res = outpost.publish(request={
            "tenant_id": "acme", "topic": "order.paid",
            "data": {"order": 9}, "metadata": {"source": "pos"},
        })

    message = receive_one(sqs, queue_url)
    routed = json.loads(message["Body"])
    assert routed["source"] == "outrider"
    assert routed["detail-type"] == "order.paid"
    assert routed["detail"]["data"] == {"order": 9}
    assert routed["detail"]["metadata"]["event-id"] == res.id
    assert routed["detail"]["metadata"]["source"] == "pos"
    done = wait(lambda: [a for a in attempts(server, res.id) if a["status"] == "success"])
    assert '"FailedEntryCount"' in json.dumps(done[0]["response_data"])


def test_failures_are_classified_and_not_retried(server, moto):
    """A queue that does not exist and a wrong secret mark the destination misconfigured
    after one attempt; the retry schedule (100ms, 200ms, 300ms) does not run."""
    sqs = moto.client("sqs")
    real_queue = sqs.create_queue(QueueName=unique("real"))["QueueUrl"]
    missing_queue = real_queue.rsplit("/", 1)[0] + "/" + unique("missing")
    with api(server) as client:
        client.put("/tenants/acme")
        cases = {
            "missing-queue": ({"queue_url": missing_queue}, moto.user, ("NonExistentQueue", "QueueDoesNotExist")),
            "bad-secret": ({"queue_url": real_queue}, {**moto.user, "secret": "wrong"}, ("SignatureDoesNotMatch",)),
        }
        # Both destinations first: creating one while a delivery is being recorded can
        # hit SQLite's "database is locked" in the host (a read-then-write transaction).
        for name, (config, credentials, _) in cases.items():
            res = client.post("/tenants/acme/destinations", json={
                "type": "aws_sqs", "topics": [name], "config": config, "credentials": credentials,
            })
            assert res.status_code == 201, res.text
        event_ids = {}
        for name in cases:
            published = client.post("/publish", json={"tenant_id": "acme", "topic": name, "data": {"n": 1}})
            assert published.status_code == 202, published.text
            event_ids[name] = published.json()["id"]

    for name, (_, _, codes) in cases.items():
        first = wait(lambda: attempts(server, event_ids[name]), what=f"{name} attempt")
        time.sleep(1.5)  # longer than the whole retry schedule
        listed = attempts(server, event_ids[name])
        assert len(listed) == 1, (name, listed)
        attempt = listed[0]
        assert attempt["status"] == "failed", attempt
        assert attempt["code"] in ("400", "403"), attempt
        assert attempt["response_data"]["error_kind"] == "misconfigured", attempt
        assert any(c in attempt["response_data"]["error"] for c in codes), attempt
        assert first[0]["id"] == attempt["id"]
    assert "Messages" not in sqs.receive_message(QueueUrl=real_queue, WaitTimeSeconds=0)


def test_server_errors_are_retried(server, sink):
    """5xx answers are retried by the schedule; the requests carry a SigV4 signature for
    the configured region and service."""
    sink.script = [503, 500]
    with api(server) as client:
        client.put("/tenants/acme")
        res = client.post("/tenants/acme/destinations", json={
            "type": "aws_kinesis", "topics": "*",
            "config": {"stream_name": "events", "region": "eu-west-1", "endpoint": sink.url("/")},
            "credentials": {"key": "AKIDEXAMPLE", "secret": "secret"},
        })
        assert res.status_code == 201, res.text
        event_id = client.post("/publish", json={"tenant_id": "acme", "topic": "t", "data": {}}).json()["id"]

    listed = wait(lambda: (a := attempts(server, event_id)) and len(a) >= 3 and a, what="three attempts")
    assert [a["status"] for a in listed] == ["failed", "failed", "success"]
    assert [a["response_data"]["error_kind"] for a in listed[:2]] == ["retry", "retry"]
    request = sink.requests[0]
    assert request["headers"]["x-amz-target"] == "Kinesis_20131202.PutRecord"
    assert request["headers"]["authorization"].startswith(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"
    )
    assert "/eu-west-1/kinesis/aws4_request, SignedHeaders=" in request["headers"]["authorization"]


def test_validation_names_the_field(server):
    with api(server) as client:
        client.put("/tenants/acme")
        res = client.post("/tenants/acme/destinations", json={
            "type": "aws_s3", "topics": "*",
            "config": {"bucket": "events", "region": "us-east-1", "key_template": "fixed.json"},
            "credentials": {"key": "k", "secret": "s"},
        })
        assert 400 <= res.status_code < 500, res.text
        assert "config.key_template" in res.text, res.text
        res = client.post("/tenants/acme/destinations", json={
            "type": "aws_kinesis", "topics": "*",
            "config": {"stream_name": "events"},
            "credentials": {"key": "k"},
        })
        assert 400 <= res.status_code < 500, res.text
        assert "config.region" in res.text and "credentials.secret" in res.text, res.text
