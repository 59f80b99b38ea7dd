#!/usr/bin/env python3
"""Signs a set of SQS requests (JSON and query protocol) with etlua's signer (the sigv4_sign
program given as argv[1]) and with botocore.auth.SigV4Auth at the same fixed time, and compares
the Authorization headers byte for byte. Exits non-zero on any mismatch."""
import datetime
import json
import subprocess
import sys
import types
from unittest import mock
from urllib.parse import urlencode

import botocore.auth
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

EPOCH = 1700000000  # 2023-11-14T22:13:20Z
AK, SK = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOKEN = "IQoJb3JpZ2luX2VjEXAMPLE//////////wEaCXVzLWVhc3QtMSJHMEUCIQ+token/with+reserved=="
QUEUE = "http://sqs.us-east-1.localhost:4566/000000000000/login-queue"
JSON_CT = "application/x-amz-json-1.0"
FORM_CT = "application/x-www-form-urlencoded"
BODY_TEXT = 'caf\u00e9 \u65e5\u672c & = + / ? # % "quoted" <xml> \u2603'


def json_case(action, payload, url="http://127.0.0.1:4566/"):
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    return (action + " (json)", url, body,
            [("Content-Type", JSON_CT), ("X-Amz-Target", "AmazonSQS." + action)])


def query_case(action, params, url="http://127.0.0.1:4566/"):
    form = [("Action", action), ("Version", "2012-11-05")] + params
    return (action + " (query)", url, urlencode(form).encode("ascii"),
            [("Content-Type", FORM_CT)])


CASES = [
    json_case("ReceiveMessage", {"QueueUrl": QUEUE, "MaxNumberOfMessages": 10,
                                 "WaitTimeSeconds": 20, "AttributeNames": ["SentTimestamp"]}),
    json_case("GetQueueUrl", {"QueueName": "login-queue"}),
    json_case("DeleteMessageBatch", {"QueueUrl": QUEUE, "Entries": [
        {"Id": "0", "ReceiptHandle": "AQEB+/=abc"}, {"Id": "1", "ReceiptHandle": BODY_TEXT}]}),
    json_case("ChangeMessageVisibilityBatch", {"QueueUrl": QUEUE, "Entries": [
        {"Id": "0", "ReceiptHandle": "r", "VisibilityTimeout": 0}]},
        url="https://sqs.eu-west-1.amazonaws.com"),
    json_case("SendMessage", {"QueueUrl": QUEUE, "MessageBody": BODY_TEXT}),
    query_case("ReceiveMessage", [("QueueUrl", QUEUE), ("MaxNumberOfMessages", "10"),
                                  ("WaitTimeSeconds", "20"), ("AttributeName.1", "SentTimestamp")]),
    query_case("GetQueueUrl", [("QueueName", "login-queue")], url="https://sqs.us-east-1.amazonaws.com:443/"),
    query_case("DeleteMessageBatch", [("QueueUrl", QUEUE),
                                      ("DeleteMessageBatchRequestEntry.1.Id", "0"),
                                      ("DeleteMessageBatchRequestEntry.1.ReceiptHandle", BODY_TEXT)]),
    query_case("SendMessage", [("MessageBody", BODY_TEXT)], url=QUEUE),
    query_case("GetQueueAttributes", [("AttributeName.1", "All")],
               url="http://localhost:9324/queue/a%20b/./x/../login-queue?b=2&a=1"),
]


class FixedDatetime(datetime.datetime):
    @classmethod
    def utcnow(cls):
        return datetime.datetime(2023, 11, 14, 22, 13, 20)


def botocore_auth(url, body, headers, token, region):
    req = AWSRequest(method="POST", url=url, data=body, headers=dict(headers))
    # botocore reads the clock through get_current_datetime() (newer) or datetime.utcnow() (older).
    if hasattr(botocore.auth, "get_current_datetime"):
        clock = mock.patch.object(botocore.auth, "get_current_datetime", FixedDatetime.utcnow)
    else:
        clock = mock.patch.object(botocore.auth, "datetime", types.SimpleNamespace(datetime=FixedDatetime))
    with clock:
        SigV4Auth(Credentials(AK, SK, token), "sqs", region).add_auth(req)
    return req.headers["Authorization"]


def etlua_auth(prog, url, body, headers, token, region):
    args = [prog, "POST", url, region, "sqs", AK, SK, token or "-", str(EPOCH)]
    args += ["%s:%s" % h for h in headers]
    out = subprocess.run(args, input=body, capture_output=True, check=True)
    return out.stdout.decode("utf-8").rstrip("\n")


def main():
    if len(sys.argv) != 2:
        print("usage: compare_botocore.py PATH/TO/sigv4_sign", file=sys.stderr)
        return 2
    failed = total = 0
    for name, url, body, headers in CASES:
        for token in (None, TOKEN):
            for region in ("us-east-1", "eu-west-1"):
                total += 1
                want = botocore_auth(url, body, headers, token, region)
                got = etlua_auth(sys.argv[1], url, body, headers, token, region)
                if got != want:
                    failed += 1
                    if failed > 5:
                        continue
                    print("MISMATCH %s token=%s region=%s url=%s\n  etlua:    %s\n  botocore: %s"
                          % (name, bool(token), region, url, got, want))
    print("%d passed, %d failed" % (total - failed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
