"""Broker destinations (rabbitmq, nats, mqtt, redis) against the real brokers on
127.0.0.1, through the real binary, read back with ordinary client libraries (pika,
nats-py, paho-mqtt, redis-py).

Besides delivery, these check the host's tcp connection pool through `/metrics`: a
stream of events to one destination opens one connection (one broker handshake), and a
connection the broker closes between deliveries is replaced without losing an event.
"""

import asyncio
import json
import subprocess
import threading
import time
import uuid

import httpx
import paho.mqtt.client as paho
import pika
from concurrent.futures import ThreadPoolExecutor
import pytest
import redis as redis_client
import nats as nats_client

AMQP = pika.ConnectionParameters("127.0.0.1", 5672, credentials=pika.PlainCredentials("guest", "guest"))


def wait(predicate, timeout=30.0, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what} not met within {timeout}s")


class Api:
    def __init__(self, server):
        self.root = server["url"].removesuffix("/api/v1")
        self.client = httpx.Client(
            base_url=server["url"], headers={"authorization": f"Bearer {server['key']}"}, timeout=30
        )
        self.tenant = "t" + uuid.uuid4().hex[:8]
        res = self.client.put(f"/tenants/{self.tenant}", json={})
        assert res.status_code in (200, 201), res.text

    def destination(self, type_, config, credentials=None, expect=201):
        body = {"type": type_, "topics": "*", "config": config}
        if credentials is not None:
            body["credentials"] = credentials
        res = self.client.post(f"/tenants/{self.tenant}/destinations", json=body)
        assert res.status_code == expect, res.text
        return res.json()

    def publish(self, topic, data, metadata=None):
        body = {"tenant_id": self.tenant, "topic": topic, "data": data}
        if metadata:
            body["metadata"] = metadata
        res = self.client.post("/publish", json=body)
        assert res.status_code == 202, res.text
        return res.json()["id"]

    def attempts(self, destination_id):
        res = self.client.get(
            f"/tenants/{self.tenant}/destinations/{destination_id}/attempts", params={"limit": 1000}
        )
        assert res.status_code == 200, res.text
        return res.json()["models"]

    def metric(self, name):
        text = httpx.get(f"{self.root}/metrics", timeout=10).text
        for line in text.splitlines():
            if line.startswith(name + " "):
                return int(float(line.split()[1]))
        raise AssertionError(f"{name} missing from /metrics")


@pytest.fixture
def api(server):
    client = Api(server)
    yield client
    client.client.close()


@pytest.fixture
def two_connections_per_destination(monkeypatch):
    """Read by the server fixture when it starts (request this one first)."""
    monkeypatch.setenv("OUTRIDER_TCP_MAX_PER_DESTINATION", "2")


# ---------------------------------------------------------------------------------------
# RabbitMQ
# ---------------------------------------------------------------------------------------


@pytest.fixture
def amqp_queue():
    """A topic exchange and a queue bound to all its routing keys."""
    name = "outrider-test-" + uuid.uuid4().hex[:8]
    conn = pika.BlockingConnection(AMQP)
    channel = conn.channel()
    channel.exchange_declare(name, exchange_type="topic", auto_delete=False)
    channel.queue_declare(name, auto_delete=False)
    channel.queue_bind(name, name, routing_key="#")
    conn.close()
    yield name
    conn = pika.BlockingConnection(AMQP)
    conn.channel().queue_delete(name)
    conn.channel().exchange_delete(name)
    conn.close()


def drain(queue, count, timeout=30.0):
    """Consume `count` messages (or fail), returning (method, properties, body) tuples."""
    got = []
    conn = pika.BlockingConnection(AMQP)
    channel = conn.channel()
    deadline = time.time() + timeout
    while len(got) < count and time.time() < deadline:
        method, props, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            time.sleep(0.05)
            continue
        got.append((method, props, body))
    conn.close()
    assert len(got) == count, f"expected {count} messages in {queue}, got {len(got)}"
    return got


def rabbitmq(api, exchange, password="guest"):
    return api.destination(
        "rabbitmq",
        {"server_url": "127.0.0.1:5672", "exchange": exchange, "tls": "false"},
        {"username": "guest", "password": password},
    )


def close_outrider_amqp_connections():
    """Close, from the broker side, every AMQP connection Outrider opened."""
    out = subprocess.run(
        ["rabbitmqctl", "-q", "list_connections", "pid", "client_properties"],
        check=True, capture_output=True, text=True,
    ).stdout
    pids = [line.split()[0] for line in out.splitlines() if "outrider" in line]
    assert pids, f"no Outrider connection open on the broker:\n{out}"
    for pid in pids:
        subprocess.run(["rabbitmqctl", "-q", "close_connection", pid, "test kill"], check=True)
    return len(pids)


def test_rabbitmq_publishes_with_confirms_headers_and_one_handshake(api, amqp_queue):
    rabbitmq(api, amqp_queue)
    opened = api.metric("outrider_tcp_connections_opened_total")
    ids = []
    for i in range(10):
        # One at a time: a steady stream reuses the pooled connection and its channel.
        ids.append(api.publish("order.paid", {"n": i}, metadata={"source": "test"}))
        drain(amqp_queue, 1)  # arrives before the next is sent
    assert api.metric("outrider_tcp_connections_opened_total") - opened == 1
    assert api.metric("outrider_tcp_connections_reused_total") >= 9

    event_id = api.publish("order.shipped", {"order": 42})
    method, props, body = drain(amqp_queue, 1)[0]
    assert method.routing_key == "order.shipped"
    assert json.loads(body) == {"order": 42}
    assert props.message_id == event_id
    assert props.content_type == "application/json"
    assert props.delivery_mode == 2
    assert props.headers["event-id"] == event_id
    assert props.headers["topic"] == "order.shipped"


def test_rabbitmq_burst_respects_the_per_destination_limit(two_connections_per_destination, api, amqp_queue):
    rabbitmq(api, amqp_queue)
    opened = api.metric("outrider_tcp_connections_opened_total")
    ids = {api.publish("order.paid", {"n": i}) for i in range(60)}
    got = drain(amqp_queue, 60)
    assert {p.message_id for _, p, _ in got} == ids
    assert api.metric("outrider_tcp_connections_opened_total") - opened <= 2


def test_rabbitmq_burst_is_pipelined_in_batches_over_one_connection(api, amqp_queue):
    """Concurrent publishes to one RabbitMQ destination: the host hands the plugin the
    deliveries due together in one deliver-batch call, one call in flight per destination,
    so the burst shares one connection and its publishes are pipelined."""
    rabbitmq(api, amqp_queue)
    opened = api.metric("outrider_tcp_connections_opened_total")
    calls = api.metric("outrider_plugin_batch_calls_total")
    events = api.metric("outrider_plugin_batch_events_total")
    n = 400
    with ThreadPoolExecutor(max_workers=16) as pool:
        ids = set(pool.map(lambda i: api.publish("order.paid", {"n": i}), range(n)))
    got = drain(amqp_queue, n)
    assert {p.message_id for _, p, _ in got} == ids
    assert api.metric("outrider_tcp_connections_opened_total") - opened == 1
    batch_events = api.metric("outrider_plugin_batch_events_total") - events
    batch_calls = api.metric("outrider_plugin_batch_calls_total") - calls
    assert batch_events == n, (batch_events, batch_calls)
    # Batches formed: fewer calls than events.
    assert batch_calls < n, (batch_events, batch_calls)
    # Every attempt is recorded on its own, each confirmed with its own delivery tag.
    destination = api.client.get(f"/tenants/{api.tenant}/destinations").json()[0]["id"]
    def all_attempts():
        found = api.attempts(destination)
        return found if len(found) >= n else None

    attempts = wait(all_attempts, what="an attempt per event")
    tags = {a["response_body"] for a in attempts}
    assert len(attempts) == n and all(a["status"] == "success" for a in attempts)
    assert len(tags) == n, "each message has its own confirm"


def test_rabbitmq_connection_closed_by_the_broker_is_replaced(api, amqp_queue):
    rabbitmq(api, amqp_queue)
    first = {api.publish("order.paid", {"n": i}) for i in range(5)}
    assert {p.message_id for _, p, _ in drain(amqp_queue, 5)} == first
    opened = api.metric("outrider_tcp_connections_opened_total")

    close_outrider_amqp_connections()
    second = {api.publish("order.paid", {"n": i}) for i in range(5, 10)}
    assert {p.message_id for _, p, _ in drain(amqp_queue, 5)} == second
    assert api.metric("outrider_tcp_connections_opened_total") > opened


def test_rabbitmq_kill_mid_stream_loses_nothing(api, amqp_queue):
    rabbitmq(api, amqp_queue)
    published = set()
    done = threading.Event()

    def stream():
        for i in range(80):
            published.add(api.publish("order.paid", {"n": i}))
        done.set()

    consumer_seen = []
    writer = threading.Thread(target=stream)
    writer.start()
    consumer_seen += drain(amqp_queue, 10)
    close_outrider_amqp_connections()
    writer.join()
    assert done.is_set()
    # At least once: every event arrives; a publish cut between write and confirm may
    # arrive twice.
    conn = pika.BlockingConnection(AMQP)
    channel = conn.channel()

    def all_arrived():
        while True:
            method, props, _ = channel.basic_get(amqp_queue, auto_ack=True)
            if method is None:
                break
            consumer_seen.append((method, props, None))
        return {p.message_id for _, p, _ in consumer_seen} >= published

    wait(all_arrived, timeout=60, what="every event delivered after the kill")
    conn.close()


def test_rabbitmq_classifies_bad_login_and_unknown_exchange(api, amqp_queue):
    bad_login = rabbitmq(api, amqp_queue, password="wrong")
    no_exchange = rabbitmq(api, "no-such-exchange-" + uuid.uuid4().hex[:6])
    api.publish("order.paid", {"n": 1})
    for dest in (bad_login, no_exchange):
        attempts = wait(lambda: api.attempts(dest["id"]), what="an attempt")
        assert attempts[0]["status"] == "failed", attempts
        assert attempts[0]["code"] == "misconfigured", attempts
    # Neither is retried: configuration problems.
    time.sleep(1.0)
    assert len(api.attempts(bad_login["id"])) == 1
    assert len(api.attempts(no_exchange["id"])) == 1


def test_tcp_connect_to_a_refused_address_is_denied_before_connecting(api):
    # 10.0.0.0/8 is private and not in the test server's OUTRIDER_ALLOW_NETWORKS; the
    # address is never contacted (no connection is opened).
    dest = api.destination(
        "rabbitmq", {"server_url": "10.255.255.1:5672"}, {"username": "guest", "password": "guest"}
    )
    opened = api.metric("outrider_tcp_connections_opened_total")
    api.publish("order.paid", {"n": 1})
    attempt = wait(lambda: api.attempts(dest["id"]), what="an attempt")[0]
    assert attempt["status"] == "failed", attempt
    assert "private" in json.dumps(attempt) and "OUTRIDER_ALLOW_NETWORKS" in json.dumps(attempt), attempt
    assert api.metric("outrider_tcp_connects_denied_total") >= 1
    assert api.metric("outrider_tcp_connections_opened_total") == opened


def test_broker_fields_are_validated_by_name(api):
    for type_, config, credentials, field in [
        ("rabbitmq", {"server_url": "http://127.0.0.1:5672"}, {"username": "g", "password": "g"}, "config.server_url"),
        ("rabbitmq", {"server_url": "127.0.0.1:5672"}, {"username": "g"}, "credentials.password"),
        ("nats", {"server_url": "127.0.0.1:4222", "subject": "a.>"}, {}, "config.subject"),
        ("mqtt", {"server_url": "127.0.0.1:1883", "qos": "2"}, {}, "config.qos"),
        ("redis", {"server_url": "127.0.0.1:6379", "mode": "lpush"}, {}, "config.mode"),
        ("redis", {"server_url": "127.0.0.1:6379", "max_len": "-1"}, {}, "config.max_len"),
    ]:
        res = api.client.post(
            f"/tenants/{api.tenant}/destinations",
            json={"type": type_, "topics": "*", "config": config, "credentials": credentials},
        )
        assert 400 <= res.status_code < 500, res.text
        assert field in res.text, (field, res.text)


# ---------------------------------------------------------------------------------------
# Redis
# ---------------------------------------------------------------------------------------


def test_redis_xadd_with_maxlen_and_reconnect_after_client_kill(api):
    r = redis_client.Redis("127.0.0.1", 6379)
    stream = "outrider-test-" + uuid.uuid4().hex[:8]
    api.destination("redis", {"server_url": "127.0.0.1:6379", "key": stream, "max_len": 1000})
    try:
        opened = api.metric("outrider_tcp_connections_opened_total")
        first = []
        for i in range(5):
            first.append(api.publish("order.paid", {"n": i}, metadata={"source": "test"}))
            wait(lambda: r.xlen(stream) == i + 1, what=f"entry {i}")
        assert api.metric("outrider_tcp_connections_opened_total") - opened == 1

        r.execute_command("CLIENT", "KILL", "TYPE", "normal")  # skips this client
        second = [api.publish("order.paid", {"n": i}) for i in range(5, 10)]
        wait(lambda: r.xlen(stream) >= 10, what="entries after CLIENT KILL")
        entries = r.xrange(stream)
        ids = [e[1][b"event_id"].decode() for e in entries]
        assert set(ids) == set(first + second)
        fields = entries[0][1]
        assert json.loads(fields[b"data"]) == {"n": 0}
        assert fields[b"topic"] == b"order.paid"
        assert json.loads(fields[b"metadata"])["source"] == "test"
    finally:
        r.delete(stream)


def test_redis_publish_reaches_subscribers(api):
    r = redis_client.Redis("127.0.0.1", 6379)
    channel = "outrider-test-" + uuid.uuid4().hex[:8]
    sub = r.pubsub()
    sub.subscribe(channel)
    assert sub.get_message(timeout=5)["type"] == "subscribe"
    api.destination("redis", {"server_url": "redis://127.0.0.1:6379", "mode": "publish", "key": channel})
    api.publish("order.paid", {"hello": "redis"})
    msg = wait(lambda: sub.get_message(timeout=0.5), what="a pub/sub message")
    assert json.loads(msg["data"]) == {"hello": "redis"}
    sub.close()


# ---------------------------------------------------------------------------------------
# NATS
# ---------------------------------------------------------------------------------------


def run(coro):
    return asyncio.new_event_loop().run_until_complete(coro)


def test_nats_core_publish_with_headers(api):
    prefix = "outrider.test." + uuid.uuid4().hex[:8]
    received = []
    ready = threading.Event()
    stop = threading.Event()

    async def subscribe():
        nc = await nats_client.connect("nats://127.0.0.1:4222")

        async def on_message(msg):
            received.append(msg)

        await nc.subscribe(prefix + ".>", cb=on_message)
        await nc.flush()
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.05)
        await nc.close()

    thread = threading.Thread(target=lambda: run(subscribe()))
    thread.start()
    try:
        assert ready.wait(10)
        api.destination("nats", {"server_url": "nats://127.0.0.1:4222", "subject": prefix + ".{{event.topic}}"})
        ids = [api.publish("order.paid", {"n": i}, metadata={"source": "test"}) for i in range(3)]
        wait(lambda: len(received) >= 3, what="three NATS messages")
        assert {m.headers["event-id"] for m in received} == set(ids)
        assert all(m.subject == prefix + ".order.paid" for m in received)
        assert received[0].headers["source"] == "test"
        assert json.loads(received[0].data)["n"] in (0, 1, 2)
    finally:
        stop.set()
        thread.join()


def test_nats_jetstream_publish_is_acked_and_carries_the_event_id(api):
    name = "OUTRIDER_" + uuid.uuid4().hex[:8].upper()
    subject = "outrider.js." + name.lower()

    async def setup():
        nc = await nats_client.connect("nats://127.0.0.1:4222")
        await nc.jetstream().add_stream(name=name, subjects=[subject + ".>"])
        await nc.close()

    async def messages():
        nc = await nats_client.connect("nats://127.0.0.1:4222")
        js = nc.jetstream()
        info = await js.stream_info(name)
        out = [await js.get_msg(name, seq) for seq in range(1, info.state.last_seq + 1)]
        await nc.close()
        return out

    async def teardown():
        nc = await nats_client.connect("nats://127.0.0.1:4222")
        await nc.jetstream().delete_stream(name)
        await nc.close()

    run(setup())
    try:
        dest = api.destination(
            "nats", {"server_url": "127.0.0.1:4222", "subject": subject + ".{{event.topic}}", "jetstream": True}
        )
        ids = [api.publish("order.paid", {"n": i}) for i in range(5)]
        got = wait(lambda: (m := run(messages())) and len(m) >= 5 and m, what="five stream messages")
        assert {m.headers["Nats-Msg-Id"] for m in got} == set(ids)
        attempts = wait(lambda: (a := api.attempts(dest["id"])) and len(a) >= 5 and a)
        assert all(a["status"] == "success" for a in attempts), attempts
        assert any("stored in stream " + name in json.dumps(a) for a in attempts), attempts

        # A subject no stream captures: no responders, a configuration problem.
        orphan = api.destination(
            "nats", {"server_url": "127.0.0.1:4222", "subject": "outrider.nostream." + name.lower(), "jetstream": True}
        )
        api.publish("order.paid", {"n": 99})
        attempts = wait(lambda: api.attempts(orphan["id"]))
        assert attempts[0]["status"] == "failed", attempts
    finally:
        run(teardown())


# ---------------------------------------------------------------------------------------
# MQTT
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("qos", ["0", "1"])
def test_mqtt_publish_at_qos(api, qos):
    prefix = "outrider/test/" + uuid.uuid4().hex[:8]
    received = []
    subscribed = threading.Event()
    client = paho.Client(paho.CallbackAPIVersion.VERSION2)
    client.on_message = lambda c, u, m: received.append(m)
    client.on_subscribe = lambda *args: subscribed.set()
    client.connect("127.0.0.1", 1883)
    client.subscribe(prefix + "/#", qos=1)
    client.loop_start()
    try:
        assert subscribed.wait(10)
        api.destination(
            "mqtt", {"server_url": "mqtt://127.0.0.1:1883", "topic": prefix + "/{{event.topic}}", "qos": qos}
        )
        opened = api.metric("outrider_tcp_connections_opened_total")
        for i in range(5):
            api.publish("order.paid", {"n": i})
            wait(lambda: len(received) >= i + 1, what=f"message {i}")
        assert sorted(json.loads(m.payload)["n"] for m in received) == list(range(5))
        assert all(m.topic == prefix + "/order.paid" for m in received)
        assert api.metric("outrider_tcp_connections_opened_total") - opened == 1
    finally:
        client.loop_stop()
        client.disconnect()
