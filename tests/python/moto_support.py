"""moto_server for the AWS destination tests and the `cargo xtask bench` SQS smoke."""

import contextlib
import json
import os
import socket
import subprocess
import time

import boto3
import httpx

from conftest import ROOT

REGION = "us-east-1"
ALLOW_ALL = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(predicate, timeout=20.0, interval=0.2, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what} not met within {timeout}s")


class Moto:
    def __init__(self, endpoint, user, temporary):
        self.endpoint = endpoint
        self.user = user  # {"key", "secret"}: an IAM user's access key
        self.temporary = temporary  # {"key", "secret", "session"}: an assumed role

    def client(self, service):
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=self.user["key"],
            aws_secret_access_key=self.user["secret"],
        )


@contextlib.contextmanager
def moto_server():
    """A moto_server on a free loopback port, set up with an IAM user and an assumed role, then
    with IAM authentication switched on."""
    binary = ROOT / "target" / "venv" / "bin" / "moto_server"
    assert binary.exists(), f"{binary} missing: pip install -r tests/python/requirements.txt"
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [str(binary), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
    )

    def answers():
        assert proc.poll() is None, "moto_server exited"
        try:
            return httpx.get(f"{endpoint}/moto-api/", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait(answers, timeout=60, what="moto_server answering")
        setup = dict(
            endpoint_url=endpoint,
            region_name=REGION,
            aws_access_key_id="setup",
            aws_secret_access_key="setup",
        )
        iam = boto3.client("iam", **setup)
        iam.create_user(UserName="outrider")
        iam.put_user_policy(UserName="outrider", PolicyName="all", PolicyDocument=ALLOW_ALL)
        key = iam.create_access_key(UserName="outrider")["AccessKey"]
        user = {"key": key["AccessKeyId"], "secret": key["SecretAccessKey"]}
        trust = json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}],
        })
        role = iam.create_role(RoleName="outrider-delivery", AssumeRolePolicyDocument=trust)["Role"]
        iam.put_role_policy(RoleName="outrider-delivery", PolicyName="all", PolicyDocument=ALLOW_ALL)
        sts = boto3.client("sts", **setup)
        assumed = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="outrider")["Credentials"]
        temporary = {
            "key": assumed["AccessKeyId"],
            "secret": assumed["SecretAccessKey"],
            "session": assumed["SessionToken"],
        }
        # From here on moto authenticates and authorizes every request.
        res = httpx.post(f"{endpoint}/moto-api/reset-auth", content=b"0")
        assert res.status_code == 200, res.text
        yield Moto(endpoint, user, temporary)
    finally:
        proc.terminate()
        proc.wait(timeout=20)


