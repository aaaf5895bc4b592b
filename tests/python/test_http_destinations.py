"""HTTP destination plugins (hookdeck, gcp_pubsub, azure_servicebus, cloudflare_queues)
against loopback stand-ins of the real services.

No emulators run here, so each stand-in checks what the real service checks before it
accepts a message, and answers like it:

- GCP: the token endpoint verifies the RS256 JWT assertion with the service account's
  public key (PyJWT) and issues access tokens; the Pub/Sub publish endpoint requires one.
- Azure Service Bus: the SAS token's HMAC-SHA256 signature, key name, resource and expiry.
- Cloudflare Queues: the API token (`Authorization: Bearer`).
- Hookdeck: the `x-hookdeck-signature` HMAC keyed by the source's token.

Each test runs the real `outrider` binary (conftest's `server` fixture) with the plugins
from target/plugins, and checks both sides: what the stand-in received and the attempts
the server recorded.
"""

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote_plus

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

# ---------------------------------------------------------------------------------------
# Loopback stand-ins
# ---------------------------------------------------------------------------------------


class StandIn:
    """A loopback HTTP server; `handle(method, path, headers, body)` returns
    `(status, json_body)`. Every request is recorded with the answer it got."""

    def __init__(self, handle):
        self.requests = []
        self.lock = threading.Lock()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self):
                length = int(self.headers.get("content-length", 0))
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, answer = handle(self.command, self.path, headers, body)
                with stand_in.lock:
                    stand_in.requests.append(
                        {"method": self.command, "path": self.path, "headers": headers,
                         "body": body, "status": status}
                    )
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _serve

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def base(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def matching(self, predicate):
        with self.lock:
            return [r for r in self.requests if predicate(r)]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class PubSub:
    """Google's OAuth2 token endpoint and the Pub/Sub publish API, on one server.

    `/token` accepts a JWT bearer grant only if the assertion is an RS256 JWT signed by
    the service account's key (checked with its public key), issued by its
    `client_email`, for this `token_uri`, with the Pub/Sub scope and at most an hour of
    validity; it answers `{access_token, expires_in, token_type}`. Publishing requires one
    of the issued access tokens and an existing topic."""

    SCOPES = {"https://www.googleapis.com/auth/pubsub", "https://www.googleapis.com/auth/cloud-platform"}

    def __init__(self, topics, emulator=False):
        self.topics = set(topics)  # "projects/{p}/topics/{t}"
        self.emulator = emulator
        self.accounts = {}  # client_email -> (public key, private_key_id)
        self.issued = set()
        self.messages = []
        self.stand_in = StandIn(self.handle)

    @property
    def base(self):
        return self.stand_in.base

    @property
    def token_uri(self):
        return self.base + "/token"

    def service_account(self, email, signing_key=None):
        """A key file for a new service account whose public key this endpoint trusts;
        with `signing_key`, the key file carries that key instead (a wrong key)."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        key_id = secrets.token_hex(20)
        self.accounts[email] = (key.public_key(), key_id)
        pem = (signing_key or key).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        return json.dumps({
            "type": "service_account",
            "project_id": "outrider-test",
            "private_key_id": key_id,
            "private_key": pem,
            "client_email": email,
            "client_id": "1234567890",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": self.token_uri,
        })

    def token_exchanges(self):
        return self.stand_in.matching(lambda r: r["path"] == "/token")

    def handle(self, method, path, headers, body):
        if path == "/token" and method == "POST":
            return self.exchange(headers, body)
        if path.startswith("/v1/") and path.endswith(":publish") and method == "POST":
            return self.publish(path, headers, body)
        return 404, {"error": {"code": 404, "message": "Not Found", "status": "NOT_FOUND"}}

    def exchange(self, headers, body):
        def invalid(description):
            return 400, {"error": "invalid_grant", "error_description": description}

        if headers.get("content-type", "").split(";")[0] != "application/x-www-form-urlencoded":
            return 400, {"error": "invalid_request", "error_description": "Expected a form body."}
        form = parse_qs(body.decode())
        if form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"]:
            return 400, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type."}
        assertion = form.get("assertion", [""])[0]
        try:
            header = jwt.get_unverified_header(assertion)
            issuer = jwt.decode(assertion, options={"verify_signature": False})["iss"]
        except (jwt.InvalidTokenError, KeyError):
            return invalid("Invalid JWT.")
        if header.get("alg") != "RS256" or issuer not in self.accounts:
            return invalid("Invalid JWT: unknown issuer or algorithm.")
        public_key, key_id = self.accounts[issuer]
        if header.get("kid") != key_id:
            return invalid("Invalid JWT: unknown key id.")
        try:
            claims = jwt.decode(
                assertion, public_key, algorithms=["RS256"], audience=self.token_uri,
                issuer=issuer, options={"require": ["iss", "aud", "iat", "exp"]},
            )
        except jwt.InvalidSignatureError:
            return invalid("Invalid JWT Signature.")
        except jwt.InvalidTokenError as e:
            return invalid(f"Invalid JWT: {e}")
        if claims["exp"] - claims["iat"] > 3600:
            return invalid("Invalid JWT: Token must be a short-lived token (60 minutes).")
        if not set(claims.get("scope", "").split()) & self.SCOPES:
            return 400, {"error": "invalid_scope", "error_description": "No Pub/Sub scope."}
        token = "ya29." + secrets.token_urlsafe(24)
        self.issued.add(token)
        return 200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}

    def publish(self, path, headers, body):
        if not self.emulator:
            auth = headers.get("authorization", "")
            if not auth.startswith("Bearer ") or auth[len("Bearer "):] not in self.issued:
                return 401, {"error": {
                    "code": 401, "status": "UNAUTHENTICATED",
                    "message": "Request had invalid authentication credentials.",
                }}
        topic = path[len("/v1/"):-len(":publish")]
        if topic not in self.topics:
            return 404, {"error": {"code": 404, "status": "NOT_FOUND",
                                   "message": f"Resource not found (resource={topic.split('/')[-1]})."}}
        ids = []
        for message in json.loads(body)["messages"]:
            self.messages.append({
                "topic": topic,
                "data": base64.b64decode(message["data"], validate=True),
                "attributes": message.get("attributes", {}),
                "authorization": headers.get("authorization"),
            })
            ids.append(str(len(self.messages)))
        return 200, {"messageIds": ids}


class ServiceBus:
    """Azure Service Bus's REST send (`POST /{entity}/messages`), checking the SAS token
    as the service does: `skn` names a known policy, `se` is in the future, `sr` covers
    the entity, and `sig` is the base64 HMAC-SHA256 of `<url-encoded sr>\\n<se>` keyed by
    that policy's key."""

    def __init__(self, namespace, entities, policies):
        self.namespace = namespace  # e.g. outrider-test.servicebus.windows.net
        self.entities = set(entities)
        self.policies = policies  # key name -> key
        self.messages = []
        self.stand_in = StandIn(self.handle)

    @property
    def base(self):
        return self.stand_in.base

    def connection_string(self, key_name, key):
        return f"Endpoint=sb://{self.namespace}/;SharedAccessKeyName={key_name};SharedAccessKey={key}"

    def check_sas(self, authorization, entity):
        prefix = "SharedAccessSignature "
        if not authorization.startswith(prefix):
            return "MissingToken: the authorization header is not a SAS token"
        fields = {k: v[0] for k, v in parse_qs(authorization[len(prefix):], keep_blank_values=True).items()}
        if set(fields) != {"sr", "sig", "se", "skn"}:
            return "MalformedToken: expected sr, sig, se and skn"
        if fields["skn"] not in self.policies:
            return f"InvalidSignature: unknown policy {fields['skn']}"
        if int(fields["se"]) < time.time():
            return "ExpiredToken: the token has expired"
        resource = f"https://{self.namespace}/{entity}".lower()
        if not resource.startswith(fields["sr"].lower().rstrip("/")):
            return "InvalidAudience: the token is not for this entity"
        key = self.policies[fields["skn"]].encode()
        string_to_sign = quote_plus(fields["sr"]) + "\n" + fields["se"]
        expected = base64.b64encode(hmac.new(key, string_to_sign.encode(), hashlib.sha256).digest()).decode()
        if not hmac.compare_digest(expected, fields["sig"]):
            return "InvalidSignature: The token has an invalid signature."
        return None

    def handle(self, method, path, headers, body):
        entity, _, rest = path.lstrip("/").partition("/")
        if method != "POST" or rest.split("?")[0] != "messages":
            return 404, {"Code": 404, "Detail": "Not found"}
        problem = self.check_sas(headers.get("authorization", ""), entity)
        if problem:
            return 401, {"Code": 401, "Detail": problem}
        if entity not in self.entities:
            return 404, {"Code": 404, "Detail": f"The messaging entity '{entity}' could not be found."}
        standard = {"authorization", "content-type", "content-length", "host", "brokerproperties",
                    "accept", "accept-encoding", "user-agent", "connection", "x-ms-retrypolicy"}
        properties = {}
        for name, value in headers.items():
            if name not in standard:
                # String properties arrive quoted; anything else would be a number or date.
                assert value.startswith('"') and value.endswith('"'), f"{name}: {value!r} is not quoted"
                properties[name] = json.loads(value)
        self.messages.append({
            "entity": entity,
            "body": body,
            "content_type": headers.get("content-type"),
            "broker_properties": json.loads(headers.get("brokerproperties", "{}")),
            "properties": properties,
        })
        return 201, {}


class CloudflareApi:
    """The Cloudflare Queues push endpoint: `POST /client/v4/accounts/{account}/queues/{queue}/messages`
    with `Authorization: Bearer <API token>` and a `{body, content_type}` message."""

    def __init__(self, account_id, queue_id, api_token):
        self.account_id, self.queue_id, self.api_token = account_id, queue_id, api_token
        self.messages = []
        self.stand_in = StandIn(self.handle)

    @property
    def api_base(self):
        return self.stand_in.base + "/client/v4"

    def handle(self, method, path, headers, body):
        if headers.get("authorization") != f"Bearer {self.api_token}":
            return 403, {"success": False, "errors": [{"code": 10000, "message": "Authentication error"}],
                         "messages": [], "result": None}
        if method != "POST" or path != f"/client/v4/accounts/{self.account_id}/queues/{self.queue_id}/messages":
            return 404, {"success": False, "errors": [{"code": 7003, "message": "Could not route to the path"}],
                         "messages": [], "result": None}
        message = json.loads(body)
        if "body" not in message or message.get("content_type", "json") not in ("json", "text", "bytes", "v8"):
            return 400, {"success": False, "errors": [{"code": 10001, "message": "invalid message"}],
                         "messages": [], "result": None}
        self.messages.append(message)
        return 200, {"success": True, "errors": [], "messages": [], "result": None}


class HookdeckSources:
    """Hookdeck's managed-source ingestion (`POST https://hkdk.events/{source id}`): the
    request must carry `x-hookdeck-signature: v0=<base64 HMAC-SHA256(token, body)>` for
    the token issued for that source."""

    def __init__(self):
        self.tokens = {}  # source id -> token
        self.events = []
        self.stand_in = StandIn(self.handle)

    @property
    def base(self):
        return self.stand_in.base

    def new_source(self, source_id):
        token = base64.b64encode(f"{source_id}:{secrets.token_urlsafe(24)}".encode()).decode()
        self.tokens[source_id] = token
        return token

    def handle(self, method, path, headers, body):
        source_id = path.strip("/")
        if method != "POST" or source_id not in self.tokens:
            return 404, {"message": "Source not found"}
        mac = hmac.new(self.tokens[source_id].encode(), body, hashlib.sha256).digest()
        expected = "v0=" + base64.b64encode(mac).decode()
        if not hmac.compare_digest(headers.get("x-hookdeck-signature", ""), expected):
            return 401, {"message": "Invalid signature"}
        self.events.append({"source": source_id, "body": body, "headers": headers})
        return 200, {"status": "SUCCESS", "message": "Request handled by Hookdeck", "request_id": secrets.token_hex(8)}


# ---------------------------------------------------------------------------------------
# The gateway's API
# ---------------------------------------------------------------------------------------


class Api:
    def __init__(self, server):
        self.client = httpx.Client(
            base_url=server["url"], headers={"authorization": f"Bearer {server['key']}"}, timeout=30
        )

    def tenant(self, tenant_id):
        res = self.client.put(f"/tenants/{tenant_id}", json={})
        assert res.status_code in (200, 201), res.text

    def create_destination(self, tenant_id, body):
        return self.client.post(f"/tenants/{tenant_id}/destinations", json=body)

    def destination(self, tenant_id, body):
        res = self.create_destination(tenant_id, body)
        assert res.status_code == 201, res.text
        return res.json()

    def publish(self, tenant_id, topic, data, metadata=None):
        body = {"tenant_id": tenant_id, "topic": topic, "data": data}
        if metadata:
            body["metadata"] = metadata
        res = self.client.post("/publish", json=body)
        assert res.status_code == 202, res.text
        return res.json()["id"]

    def attempts(self, event_id):
        res = self.client.get("/attempts", params={"event_id": event_id, "direction": "asc"})
        assert res.status_code == 200, res.text
        return res.json()["models"]

    def wait_attempts(self, event_id, count=1, timeout=20.0):
        return wait(lambda: (a := self.attempts(event_id)) and len(a) >= count and a, timeout)


def wait(predicate, timeout=20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def settle_failed(api, event_id):
    """The single attempt of a permanently failed event: recorded as failed and, the
    failure not being retryable, not retried (the test server retries after 100 ms)."""
    attempts = api.wait_attempts(event_id)
    time.sleep(1.0)
    attempts = api.attempts(event_id)
    assert [a["status"] for a in attempts] == ["failed"], attempts
    return attempts[0]


@pytest.fixture
def api(server):
    client = Api(server)
    client.tenant("acme")
    yield client
    client.client.close()


@pytest.fixture
def pubsub():
    service = PubSub(topics=["projects/outrider-test/topics/orders"])
    yield service
    service.stand_in.close()


@pytest.fixture
def servicebus():
    service = ServiceBus(
        "outrider-test.servicebus.windows.net",
        entities=["orders"],
        policies={"send-only": base64.b64encode(secrets.token_bytes(32)).decode()},
    )
    yield service
    service.stand_in.close()


@pytest.fixture
def cloudflare():
    service = CloudflareApi("023e105f4ecef8ad9ca31a8372d0c353", "5d8d3a3c8a3e4a7c9c6f5e1b2a3c4d5e",
                            "cf-" + secrets.token_urlsafe(30))
    yield service
    service.stand_in.close()


@pytest.fixture
def hookdeck():
    service = HookdeckSources()
    yield service
    service.stand_in.close()


# ---------------------------------------------------------------------------------------
# GCP Pub/Sub
# ---------------------------------------------------------------------------------------


def test_gcp_pubsub_exchanges_a_signed_assertion_once_and_publishes(api, pubsub):
    key_file = pubsub.service_account("publisher@outrider-test.iam.gserviceaccount.com")
    dest = api.destination("acme", {
        "type": "gcp_pubsub", "topics": "*",
        "config": {"project_id": "outrider-test", "topic": "orders", "endpoint": pubsub.base},
        "credentials": {"service_account_json": key_file},
        "delivery_metadata": {"env": "test"},
    })
    assert dest["credentials"]["service_account_json"].startswith("{\"ty")  # obfuscated on read

    # Deliveries that start together may each fetch a token before any is cached, so the
    # second event is published once the first is delivered.
    first = api.publish("acme", "order.paid", {"order": 1}, metadata={"source": "checkout"})
    attempts = api.wait_attempts(first)
    assert attempts[0]["status"] == "success", attempts
    assert attempts[0]["code"] == "200"
    second = api.publish("acme", "order.paid", {"order": 2})
    attempts = api.wait_attempts(second)
    assert attempts[0]["status"] == "success", attempts

    # Both events published with one token: the token was cached between deliveries.
    assert len(pubsub.messages) == 2
    assert len(pubsub.token_exchanges()) == 1
    assert pubsub.messages[0]["authorization"] == pubsub.messages[1]["authorization"]
    by_event = {m["attributes"]["event-id"]: m for m in pubsub.messages}
    message = by_event[first]
    assert message["topic"] == "projects/outrider-test/topics/orders"
    assert json.loads(message["data"]) == {"order": 1}
    attributes = message["attributes"]
    assert attributes["topic"] == "order.paid"
    assert attributes["source"] == "checkout"
    assert attributes["env"] == "test"
    assert abs(int(attributes["timestamp"]) - time.time()) < 120
    assert json.loads(by_event[second]["data"]) == {"order": 2}


def test_gcp_pubsub_wrong_key_fails_at_the_token_endpoint(api, pubsub):
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_file = pubsub.service_account("publisher@outrider-test.iam.gserviceaccount.com", signing_key=stranger)
    api.destination("acme", {
        "type": "gcp_pubsub", "topics": "*",
        "config": {"project_id": "outrider-test", "topic": "orders", "endpoint": pubsub.base},
        "credentials": {"service_account_json": key_file},
    })
    event_id = api.publish("acme", "order.paid", {"order": 1})
    attempt = settle_failed(api, event_id)
    assert attempt["code"] == "400"
    assert "Invalid JWT Signature" in attempt["response_data"]["error"]
    assert [r["status"] for r in pubsub.token_exchanges()] == [400]
    assert pubsub.messages == []


def test_gcp_pubsub_unknown_topic_fails(api, pubsub):
    key_file = pubsub.service_account("publisher@outrider-test.iam.gserviceaccount.com")
    api.destination("acme", {
        "type": "gcp_pubsub", "topics": "*",
        "config": {"project_id": "outrider-test", "topic": "missing", "endpoint": pubsub.base},
        "credentials": {"service_account_json": key_file},
    })
    attempt = settle_failed(api, api.publish("acme", "order.paid", {"order": 1}))
    assert attempt["code"] == "404"
    assert "NOT_FOUND" in attempt["response_data"]["error"]


def test_gcp_pubsub_emulator_endpoint_needs_no_key(api):
    emulator = PubSub(topics=["projects/outrider-test/topics/orders"], emulator=True)
    try:
        host_port = emulator.base.removeprefix("http://")  # Outpost's form: localhost:8085
        api.destination("acme", {
            "type": "gcp_pubsub", "topics": "*",
            "config": {"project_id": "outrider-test", "topic": "orders", "endpoint": host_port},
            "credentials": {"service_account_json": "{}"},
        })
        event_id = api.publish("acme", "order.paid", {"order": 7})
        assert api.wait_attempts(event_id)[0]["status"] == "success"
        assert emulator.messages[0]["authorization"] is None
        assert json.loads(emulator.messages[0]["data"]) == {"order": 7}
        assert emulator.token_exchanges() == []
    finally:
        emulator.stand_in.close()


def test_gcp_pubsub_validation_names_the_field(api, pubsub):
    res = api.create_destination("acme", {
        "type": "gcp_pubsub", "topics": "*",
        "config": {"project_id": "outrider-test", "topic": "orders"},
        "credentials": {"service_account_json": "not json"},
    })
    assert 400 <= res.status_code < 500, res.text
    assert "credentials.service_account_json" in res.text and "not valid JSON" in res.text


# ---------------------------------------------------------------------------------------
# Azure Service Bus
# ---------------------------------------------------------------------------------------


def test_azure_servicebus_sends_with_a_valid_sas_token(api, servicebus):
    key = servicebus.policies["send-only"]
    api.destination("acme", {
        "type": "azure_servicebus", "topics": "*",
        "config": {"name": "orders", "endpoint": servicebus.base},
        "credentials": {"connection_string": servicebus.connection_string("send-only", key)},
        "delivery_metadata": {"env": "test"},
    })
    event_id = api.publish("acme", "order.paid", {"order": 42}, metadata={"source": "checkout"})
    attempts = api.wait_attempts(event_id)
    assert attempts[0]["status"] == "success", attempts
    assert attempts[0]["code"] == "201"

    [message] = servicebus.messages
    assert message["entity"] == "orders"
    assert json.loads(message["body"]) == {"order": 42}
    assert message["content_type"] == "application/json"
    assert message["broker_properties"] == {"MessageId": event_id}
    assert message["properties"]["event-id"] == event_id
    assert message["properties"]["topic"] == "order.paid"
    assert message["properties"]["source"] == "checkout"
    assert message["properties"]["env"] == "test"
    assert abs(int(message["properties"]["timestamp"]) - time.time()) < 120


def test_azure_servicebus_wrong_key_is_rejected(api, servicebus):
    wrong = base64.b64encode(secrets.token_bytes(32)).decode()
    api.destination("acme", {
        "type": "azure_servicebus", "topics": "*",
        "config": {"name": "orders", "endpoint": servicebus.base},
        "credentials": {"connection_string": servicebus.connection_string("send-only", wrong)},
    })
    attempt = settle_failed(api, api.publish("acme", "order.paid", {"order": 42}))
    assert attempt["code"] == "401"
    assert "InvalidSignature" in json.dumps(attempt["response_data"])
    assert servicebus.messages == []
    assert [r["status"] for r in servicebus.stand_in.requests] == [401]


def test_azure_servicebus_validation_names_the_field(api):
    res = api.create_destination("acme", {
        "type": "azure_servicebus", "topics": "*",
        "config": {"name": "orders"},
        "credentials": {"connection_string": "Endpoint=sb://x.servicebus.windows.net/;SharedAccessKeyName=a"},
    })
    assert 400 <= res.status_code < 500, res.text
    assert "credentials.connection_string" in res.text and "SharedAccessKey" in res.text


# ---------------------------------------------------------------------------------------
# Cloudflare Queues
# ---------------------------------------------------------------------------------------


def cloudflare_destination(cloudflare, api_token):
    return {
        "type": "cloudflare_queues", "topics": "*",
        "config": {"account_id": cloudflare.account_id, "queue_id": cloudflare.queue_id,
                   "api_base": cloudflare.api_base},
        "credentials": {"api_token": api_token},
        "delivery_metadata": {"env": "test"},
    }


def test_cloudflare_queues_pushes_with_the_api_token(api, cloudflare):
    api.destination("acme", cloudflare_destination(cloudflare, cloudflare.api_token))
    event_id = api.publish("acme", "order.paid", {"order": 42}, metadata={"source": "checkout"})
    attempts = api.wait_attempts(event_id)
    assert attempts[0]["status"] == "success", attempts

    [message] = cloudflare.messages
    assert message["content_type"] == "json"
    assert message["body"]["data"] == {"order": 42}
    metadata = message["body"]["metadata"]
    assert metadata["event-id"] == event_id
    assert metadata["topic"] == "order.paid"
    assert metadata["source"] == "checkout"
    assert metadata["env"] == "test"


def test_cloudflare_queues_wrong_token_fails(api, cloudflare):
    api.destination("acme", cloudflare_destination(cloudflare, "cf-wrong-token"))
    attempt = settle_failed(api, api.publish("acme", "order.paid", {"order": 42}))
    assert attempt["code"] == "403"
    assert "Authentication error" in attempt["response_data"]["error"]
    assert cloudflare.messages == []


def test_cloudflare_queues_validation_names_the_field(api, cloudflare):
    body = cloudflare_destination(cloudflare, cloudflare.api_token)
    body["config"]["queue_id"] = "my-queue"
    res = api.create_destination("acme", body)
    assert 400 <= res.status_code < 500, res.text
    assert "config.queue_id" in res.text


# ---------------------------------------------------------------------------------------
# Hookdeck
# ---------------------------------------------------------------------------------------


def test_hookdeck_delivers_signed_events_to_the_source(api, hookdeck):
    token = hookdeck.new_source("src_orders1")
    api.destination("acme", {
        "type": "hookdeck", "topics": "*",
        "config": {"endpoint": hookdeck.base},
        "credentials": {"token": token},
        "delivery_metadata": {"env": "test"},
    })
    event_id = api.publish("acme", "order.paid", {"order": 42}, metadata={"source": "checkout"})
    attempts = api.wait_attempts(event_id)
    assert attempts[0]["status"] == "success", attempts
    assert attempts[0]["response_data"]["body"]["status"] == "SUCCESS"

    [event] = hookdeck.events
    assert event["source"] == "src_orders1"
    assert json.loads(event["body"]) == {"order": 42}
    headers = event["headers"]
    assert headers["content-type"] == "application/json"
    assert headers["x-outpost-event-id"] == event_id
    assert headers["x-outpost-topic"] == "order.paid"
    assert headers["x-outpost-source"] == "checkout"
    assert headers["x-outpost-env"] == "test"


def test_hookdeck_wrong_token_is_rejected(api, hookdeck):
    hookdeck.new_source("src_orders1")
    forged = base64.b64encode(b"src_orders1:not-the-issued-secret").decode()
    api.destination("acme", {
        "type": "hookdeck", "topics": "*",
        "config": {"endpoint": hookdeck.base},
        "credentials": {"token": forged},
    })
    attempt = settle_failed(api, api.publish("acme", "order.paid", {"order": 42}))
    assert attempt["code"] == "401"
    assert hookdeck.events == []


def test_hookdeck_validation_names_the_field(api):
    res = api.create_destination("acme", {
        "type": "hookdeck", "topics": "*", "credentials": {"token": "not a token"},
    })
    assert 400 <= res.status_code < 500, res.text
    assert "credentials.token" in res.text


def test_destination_types_list_the_four_prototypes(api):
    res = api.client.get("/destination-types")
    assert res.status_code == 200, res.text
    types = {t["type"]: t for t in res.json()}
    assert types["hookdeck"]["label"] == "Hookdeck"
    assert types["hookdeck"]["setup_link"]["href"] == "https://dashboard.hookdeck.com/connect"
    assert [f["key"] for f in types["gcp_pubsub"]["config_fields"]] == ["project_id", "topic", "endpoint"]
    assert [f["key"] for f in types["gcp_pubsub"]["credential_fields"]] == ["service_account_json"]
    assert [f["key"] for f in types["azure_servicebus"]["credential_fields"]] == ["connection_string"]
    assert [f["key"] for f in types["cloudflare_queues"]["credential_fields"]] == ["api_token"]
    assert all(f["sensitive"] for f in types["cloudflare_queues"]["credential_fields"])
