#!/usr/bin/env python3
"""Sends a set of SQS requests (JSON and query protocol) through etlua's transport, which signs
them (src/sigv4.c; the sigv4_send program given as argv[1]), to a local listener; reads the
Authorization and X-Amz-Date headers each request carried, signs the same request with botocore.auth.SigV4Auth at
that time, and compares the Authorization headers byte for byte. Exits non-zero on any mismatch.
etlua posts every request to the endpoint's root ("/"), so the cases differ in host, port,
protocol, body, region and session token, not in path or query string."""
import datetime
import json
import socket
import subprocess
import sys
import threading
import types
from unittest import mock
from urllib.parse import urlencode, urlsplit

import botocore.auth
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

AK, SK = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOKEN = "IQoJb3JpZ2luX2VjEXAMPLE//////////wEaCXVzLWVhc3QtMSJHMEUCIQ+token/with+reserved=="
QUEUE = "http://sqs.us-east-1.localhost:4566/000000000000/login-queue"
JSON_CT = "application/x-amz-json-1.0"
FORM_CT = "application/x-www-form-urlencoded"
BODY_TEXT = 'caf\u00e9 \u65e5\u672c & = + / ? # % "quoted" <xml> \u2603'
SYSTEM = ["SentTimestamp", "ApproximateReceiveCount", "MessageGroupId", "SequenceNumber"]


def json_case(action, payload, url="http://127.0.0.1:4566/"):
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    return (action + " (json)", url, body,
            [("Content-Type", JSON_CT), ("X-Amz-Target", "AmazonSQS." + action)])


def query_case(action, params, url="http://127.0.0.1:4566/"):
    form = [("Action", action), ("Version", "2012-11-05")] + params
    return (action + " (query)", url, urlencode(form).encode("ascii"),
            [("Content-Type", FORM_CT)])


CASES = [
    json_case("ReceiveMessage", {"QueueUrl": QUEUE, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 20,
                                 "AttributeNames": SYSTEM, "MessageSystemAttributeNames": SYSTEM,
                                 "MessageAttributeNames": ["All"]}),
    json_case("GetQueueUrl", {"QueueName": "login-queue"}),
    json_case("DeleteMessageBatch", {"QueueUrl": QUEUE, "Entries": [
        {"Id": "0", "ReceiptHandle": "AQEB+/=abc"}, {"Id": "1", "ReceiptHandle": BODY_TEXT}]}),
    json_case("ChangeMessageVisibilityBatch", {"QueueUrl": QUEUE, "Entries": [
        {"Id": "0", "ReceiptHandle": "r", "VisibilityTimeout": 0}]},
        url="http://sqs.eu-west-1.amazonaws.com/"),
    json_case("SendMessage", {"QueueUrl": QUEUE, "MessageBody": BODY_TEXT * 200}),
    query_case("ReceiveMessage", [("QueueUrl", QUEUE), ("MaxNumberOfMessages", "10"),
                                  ("WaitTimeSeconds", "20"), ("AttributeName.1", "SentTimestamp"),
                                  ("MessageAttributeName.1", "All")]),
    query_case("GetQueueUrl", [("QueueName", "login-queue")], url="http://sqs.us-east-1.amazonaws.com/"),
    query_case("DeleteMessageBatch", [("QueueUrl", QUEUE),
                                      ("DeleteMessageBatchRequestEntry.1.Id", "0"),
                                      ("DeleteMessageBatchRequestEntry.1.ReceiptHandle", BODY_TEXT)]),
    query_case("GetQueueAttributes", [("QueueUrl", QUEUE), ("AttributeName.1", "All")],
               url="http://localhost:9324/"),
]


class Listener:
    """Answers every request with 200 {} and keeps the headers of the last one."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.headers = None
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            conn, _ = self.sock.accept()
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                head, body = data.split(b"\r\n\r\n", 1)
                headers = {}
                for line in head.decode("latin-1").split("\r\n")[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                need = int(headers.get("content-length", "0"))
                while len(body) < need:
                    body += conn.recv(65536)
                self.headers = headers
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")


def botocore_auth(url, body, headers, token, region, when):
    req = AWSRequest(method="POST", url=url, data=body, headers=dict(headers))

    class Fixed(datetime.datetime):
        @classmethod
        def utcnow(cls):
            return when

    # botocore reads the clock through get_current_datetime() (newer) or datetime.utcnow() (older).
    if hasattr(botocore.auth, "get_current_datetime"):
        clock = mock.patch.object(botocore.auth, "get_current_datetime", Fixed.utcnow)
    else:
        clock = mock.patch.object(botocore.auth, "datetime", types.SimpleNamespace(datetime=Fixed))
    with clock:
        SigV4Auth(Credentials(AK, SK, token), "sqs", region).add_auth(req)
    return req.headers["Authorization"]


def main():
    if len(sys.argv) != 2:
        print("usage: compare_botocore.py PATH/TO/sigv4_send", file=sys.stderr)
        return 2
    listener = Listener()
    failed = total = 0
    for name, url, body, headers in CASES:
        for token in (None, TOKEN):
            for region in ("us-east-1", "eu-west-1"):
                total += 1
                u = urlsplit(url)
                connect_to = "%s:%d:127.0.0.1:%d" % (u.hostname, u.port or 80, listener.port)
                args = [sys.argv[1], url, connect_to, region, AK, SK, token or "-"]
                args += ["%s: %s" % h for h in headers]
                listener.headers = None
                subprocess.run(args, input=body, check=True)
                got = listener.headers or {}
                when = datetime.datetime.strptime(got.get("x-amz-date", "19700101T000000Z"),
                                                  "%Y%m%dT%H%M%SZ")
                want = botocore_auth(url, body, headers, token, region, when)
                if got.get("authorization") != want:
                    failed += 1
                    if failed > 5:
                        continue
                    print("MISMATCH %s token=%s region=%s url=%s\n  etlua:    %s\n  botocore: %s"
                          % (name, bool(token), region, url, got.get("authorization"), want))
    print("%d passed, %d failed" % (total - failed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
