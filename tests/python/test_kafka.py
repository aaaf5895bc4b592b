"""The `kafka` destination against a real Kafka-protocol broker on 127.0.0.1 (Tansu, see
kafka_support.py), through the real binary, read back with kafka-python.

Checks what a consumer sees (value, key, headers, partition as the Java client's murmur2
partitioner picks it), that a stream costs one connection handshake, that connections cut
mid-stream lose no event, and how failures are classified.
"""

import json
import threading
import time
import uuid

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import NewTopic
from kafka.partitioner.default import murmur2

from kafka_support import DroppingProxy, free_port, running_broker
from moto_support import wait
from test_brokers import Api


@pytest.fixture
def api(server):
    client = Api(server)
    yield client
    client.client.close()


@pytest.fixture
def broker():
    with running_broker("kafka-test") as b:
        yield b


class Topic:
    """A topic created on the broker, read from the beginning of every partition."""

    def __init__(self, broker, partitions=3):
        self.name = "outrider-" + uuid.uuid4().hex[:8]
        self.partitions = partitions
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=10000)
        admin.create_topics([NewTopic(self.name, partitions, 1)])
        admin.close()
        self.consumer = KafkaConsumer(
            bootstrap_servers=broker.bootstrap, group_id=None, enable_auto_commit=False,
            auto_offset_reset="earliest", request_timeout_ms=10000,
        )
        self.consumer.assign([TopicPartition(self.name, p) for p in range(partitions)])
        self.records = []

    def poll(self):
        for batch in self.consumer.poll(timeout_ms=200).values():
            self.records.extend(batch)
        return self.records

    def wait_for(self, count, timeout=30.0):
        wait(lambda: len(self.poll()) >= count, timeout=timeout, what=f"{count} records in {self.name}")
        return self.records

    def event_ids(self):
        return {dict(r.headers)["event-id"].decode() for r in self.poll()}

    def close(self):
        self.consumer.close()


@pytest.fixture
def topic(broker):
    t = Topic(broker)
    yield t
    t.close()


def config(broker, topic, **extra):
    return {"brokers": broker.address, "topic": topic.name, "tls": "false", **extra}


def kafka(api, settings, credentials=None):
    return api.destination("kafka", settings, credentials or {})["id"]


def test_records_carry_value_key_headers_and_murmur2_partition_over_one_connection(api, broker, topic):
    kafka(api, config(broker, topic, partition_key_template="{{data.customer}}"))
    opened = api.metric("outrider_tcp_connections_opened_total")
    sent = []
    for i in range(10):
        # One at a time: a steady stream reuses the pooled, handshaken connection.
        data = {"customer": f"c{i % 4}", "n": i}
        sent.append((api.publish("order.paid", data, metadata={"source": "test"}), data))
        topic.wait_for(i + 1)
    assert api.metric("outrider_tcp_connections_opened_total") - opened == 1

    by_id = {dict(r.headers)["event-id"].decode(): r for r in topic.records}
    assert set(by_id) == {event_id for event_id, _ in sent}
    for event_id, data in sent:
        record = by_id[event_id]
        headers = dict(record.headers)
        assert json.loads(record.value) == data
        assert record.key == data["customer"].encode()
        assert record.partition == (murmur2(record.key) & 0x7FFFFFFF) % topic.partitions
        assert headers["content-type"] == b"application/json"
        assert headers["topic"] == b"order.paid"
        assert headers["source"] == b"test"
        assert abs(int(headers["timestamp"]) - record.timestamp // 1000) <= 1
    # The customers' records spread over more than one partition, each key on one.
    assert len({r.partition for r in topic.records}) > 1


def test_default_key_is_the_event_id_and_a_fixed_partition_wins(api, broker, topic):
    kafka(api, config(broker, topic, partition="2", acks="1"))
    ids = [api.publish("user.created", {"n": i}) for i in range(6)]
    records = topic.wait_for(6)
    assert {r.key.decode() for r in records} == set(ids)
    assert {r.partition for r in records} == {2}


def test_connections_cut_mid_stream_lose_nothing_and_delivery_resumes(api):
    proxy = DroppingProxy()
    with running_broker("kafka-proxied", advertise_port=proxy.port) as broker:
        proxy.start(broker.port)
        topic = Topic(broker)
        try:
            kafka(api, config(broker, topic))
            assert broker.address == f"127.0.0.1:{proxy.port}"
            published = set()

            def stream():
                for i in range(120):
                    published.add(api.publish("order.paid", {"n": i}))

            writer = threading.Thread(target=stream)
            writer.start()
            topic.wait_for(10)
            opened = api.metric("outrider_tcp_connections_opened_total")
            assert proxy.drop_all() >= 1, "no connection was open through the proxy"
            writer.join()
            topic.wait_for(len(published))
            # Cut again right after a delivery, so a pooled connection is surely open
            # (the broker or the consumer may have closed theirs meanwhile).
            published.add(api.publish("order.paid", {"n": 120}))
            wait(lambda: topic.event_ids() >= published, timeout=60, what="every event so far")
            assert proxy.drop_all() >= 1, "no pooled connection was open after a delivery"
            more = {api.publish("order.paid", {"n": i}) for i in range(121, 130)}
            published |= more
            # At least once: every event arrives (a record whose ack was cut off may
            # arrive twice).
            wait(lambda: topic.event_ids() >= published, timeout=60, what="every event after the cuts")
            assert api.metric("outrider_tcp_connections_opened_total") > opened
        finally:
            topic.close()
            proxy.close()


def test_an_unreachable_broker_is_retried_not_failed(api):
    dest = kafka(api, {"brokers": f"127.0.0.1:{free_port()}", "topic": "events", "tls": "false"})
    api.publish("order.paid", {"n": 1})
    attempts = wait(lambda: len(api.attempts(dest)) >= 2 and api.attempts(dest), what="retries")
    assert all(a["code"] == "retry" for a in attempts), attempts


def test_a_partition_the_topic_lacks_is_a_configuration_problem(api, broker, topic):
    dest = kafka(api, config(broker, topic, partition=str(topic.partitions + 4)))
    api.publish("order.paid", {"n": 1})
    attempt = wait(lambda: api.attempts(dest), what="an attempt")[0]
    assert attempt["code"] == "misconfigured", attempt
    assert f"has {topic.partitions} partitions" in str(attempt), attempt
    # Not retried (the test server retries after 100 ms), and nothing was written.
    time.sleep(1.0)
    assert len(api.attempts(dest)) == 1
    assert topic.poll() == []


def test_bad_configurations_are_refused_with_the_field_named(api):
    for body, credentials, field in [
        ({"topic": "t"}, {}, "config.brokers"),
        ({"brokers": "kafka://127.0.0.1:9092", "topic": "t"}, {}, "config.brokers"),
        ({"brokers": "127.0.0.1:notaport", "topic": "t"}, {}, "config.brokers"),
        ({"brokers": "127.0.0.1:9092", "topic": "no spaces"}, {}, "config.topic"),
        ({"brokers": "127.0.0.1:9092", "topic": "t", "sasl_mechanism": "gssapi"}, {}, "config.sasl_mechanism"),
        ({"brokers": "127.0.0.1:9092", "topic": "t", "sasl_mechanism": "plain"}, {"username": "u"},
         "credentials.password"),
        ({"brokers": "127.0.0.1:9092", "topic": "t", "partition": "-1"}, {}, "config.partition"),
        ({"brokers": "127.0.0.1:9092", "topic": "t", "partition_key_template": "{{nope}}"}, {},
         "config.partition_key_template"),
    ]:
        res = api.client.post(
            f"/tenants/{api.tenant}/destinations",
            json={"type": "kafka", "topics": "*", "config": body, "credentials": credentials},
        )
        assert 400 <= res.status_code < 500, (body, res.text)
        assert field in res.text, (field, res.text)
