#!/usr/bin/env python3
"""Cross-checks the webhook plugin's Standard Webhooks signatures with the reference
`standardwebhooks` package (pip install standardwebhooks).

Runs the plugin's `print_standard_request` unit test natively (a request signed now with
a current and a previous secret) and verifies it with each secret exactly as a receiver
would. Exits non-zero on failure.

    python3 plugins/webhook/verify_standard.py
"""

import json
import subprocess

from standardwebhooks import Webhook

SECRETS = ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_c2VjcmV0LW9sZA=="]

output = subprocess.run(
    ["cargo", "test", "-q", "-p", "outrider-plugin-webhook", "print_standard_request",
     "--", "--nocapture"],
    check=True, capture_output=True, text=True,
).stdout
request = next(json.loads(line) for line in output.splitlines() if line.startswith("{"))
for secret in SECRETS:
    Webhook(secret).verify(request["body"], request["headers"])  # raises on mismatch
try:
    Webhook("whsec_d3Jvbmc=").verify(request["body"], request["headers"])
    raise SystemExit("a wrong secret verified")
except Exception as e:  # WebhookVerificationError
    if isinstance(e, SystemExit):
        raise
print("ok:", request["headers"]["webhook-signature"], "verifies with standardwebhooks for both secrets")
