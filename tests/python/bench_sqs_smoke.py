"""`cargo xtask bench` correctness smoke: N events through the release binary's `aws_sqs`
destination into a real moto_server (IAM auth on, so every SigV4 signature is checked),
read back with boto3. Prints one `name: figure` line; exits non-zero when an event is
missing or the body differs. moto is a Python server, so the rate measures moto, not
Outrider: it is printed for context only.

Usage: bench_sqs_smoke.py --binary target/release/outrider --plugins-dir target/plugins --events 200
"""

import argparse
import concurrent.futures
import json
import sys
import time
import uuid

import httpx

from conftest import outrider_server
from moto_support import moto_server


def publish_all(server, count):
    headers = {"authorization": f"Bearer {server['key']}"}
    with httpx.Client(base_url=server["url"], headers=headers, timeout=30) as client:

        def publish(seq):
            res = client.post("/publish", json={
                "tenant_id": "smoke", "topic": "smoke.sqs", "data": {"seq": seq},
            })
            assert res.status_code == 202, res.text
            return res.json()["id"]

        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            return list(pool.map(publish, range(count)))


def receive_all(sqs, queue_url, expected, timeout):
    received = {}
    duplicates = 0
    deadline = time.time() + timeout
    while len(received) < expected and time.time() < deadline:
        res = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"],
            WaitTimeSeconds=1,
        )
        for message in res.get("Messages", []):
            event_id = message["MessageAttributes"]["event-id"]["StringValue"]
            if event_id in received:
                duplicates += 1
            received[event_id] = json.loads(message["Body"])
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return received, duplicates


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--plugins-dir", required=True)
    parser.add_argument("--events", type=int, default=200)
    args = parser.parse_args()
    with moto_server() as moto, outrider_server(args.binary, args.plugins_dir, quiet=True) as server:
        sqs = moto.client("sqs")
        queue_url = sqs.create_queue(QueueName=f"smoke-{uuid.uuid4().hex[:8]}")["QueueUrl"]
        headers = {"authorization": f"Bearer {server['key']}"}
        with httpx.Client(base_url=server["url"], headers=headers, timeout=30) as client:
            assert client.put("/tenants/smoke").status_code in (200, 201)
            res = client.post("/tenants/smoke/destinations", json={
                "type": "aws_sqs", "topics": "*",
                "config": {"queue_url": queue_url},
                "credentials": {"key": moto.user["key"], "secret": moto.user["secret"]},
            })
            assert res.status_code == 201, res.text
        started = time.time()
        ids = publish_all(server, args.events)
        received, duplicates = receive_all(sqs, queue_url, len(ids), timeout=120)
        elapsed = time.time() - started
    missing = set(ids) - set(received)
    wrong = [i for i, seq in zip(ids, range(len(ids))) if received.get(i, {"seq": seq}) != {"seq": seq}]
    print(
        f"smoke/aws_sqs via moto (correctness only): {len(received)}/{len(ids)} delivered, "
        f"{len(missing)} missing, {len(wrong)} wrong bodies, {duplicates} duplicates "
        f"({len(received) / elapsed:.0f} events/s, bound by moto)"
    )
    return 1 if missing or wrong else 0


if __name__ == "__main__":
    sys.exit(main())
