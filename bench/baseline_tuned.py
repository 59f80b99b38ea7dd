#!/usr/bin/python3
"""Tuned Python baseline: what a careful engineer writes in Python (NOT etlua's design).

4 receiver threads, each with its own boto3 client and psycopg2 connection: receive 10 at a
time (1 s long poll), HMAC-SHA-256 masking, rows buffered and written with COPY (copy_expert)
every ~1000 rows in one transaction, then DeleteMessageBatch (10 per call) after the commit.
A thread stops when a receive comes back empty, after flushing its buffer. No ledger, no
rejects table, no validation beyond "parses": a bad message is skipped and deleted.

env: SQS_QUEUE_URL, AWS_ENDPOINT_URL, AWS_REGION, DATABASE_URL/PG*, ETLUA_MASK_KEY.
For fauxqs see baseline_seed.py (AWS_DATA_PATH).
"""
import hashlib, hmac, io, json, os, sys, threading
from datetime import datetime, timezone

import boto3
import psycopg2

THREADS = 4
FLUSH_ROWS = 1000
DDL = """CREATE TABLE IF NOT EXISTS user_logins(
    user_id varchar(128), device_type varchar(32),
    masked_ip varchar(256), masked_device_id varchar(256),
    locale varchar(32), app_version integer, create_date date)"""
COPY = ("COPY user_logins (user_id, device_type, masked_ip, masked_device_id, locale,"
        " app_version, create_date) FROM STDIN")

KEY = os.environ["ETLUA_MASK_KEY"].encode()
QUEUE_URL = os.environ["SQS_QUEUE_URL"]


def mask(value):
    if value is None:
        return None
    return hmac.new(KEY, value.encode(), hashlib.sha256).hexdigest()


def version(v):
    if v is None:
        return None
    parts = [int(p) for p in str(v).split(".")] + [0, 0]
    return parts[0] * 1000000 + parts[1] * 1000 + parts[2]


def tsv(v):
    if v is None:
        return "\\N"
    return str(v).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def to_row(m):
    rec = json.loads(m["Body"])
    sent = int(m.get("Attributes", {}).get("SentTimestamp", "0")) / 1000
    day = datetime.fromtimestamp(sent, timezone.utc).date().isoformat()
    return "\t".join(tsv(x) for x in (
        rec["user_id"], rec.get("device_type"), mask(rec.get("ip")), mask(rec.get("device_id")),
        rec.get("locale"), version(rec.get("app_version")), day)) + "\n"


class Worker(threading.Thread):
    def __init__(self):
        super().__init__()
        self.sqs = boto3.session.Session().client(
            "sqs", endpoint_url=os.environ.get("AWS_ENDPOINT_URL"),
            region_name=os.environ.get("AWS_REGION", "us-east-1"))
        self.conn = psycopg2.connect(os.environ.get("DATABASE_URL", ""))
        self.rows, self.receipts, self.count, self.error = [], [], 0, None

    def flush(self):
        if self.rows:
            with self.conn.cursor() as cur:
                cur.copy_expert(COPY, io.StringIO("".join(self.rows)))
            self.conn.commit()
            self.count += len(self.rows)
        for i in range(0, len(self.receipts), 10):
            chunk = self.receipts[i:i + 10]
            self.sqs.delete_message_batch(QueueUrl=QUEUE_URL, Entries=[
                {"Id": str(j), "ReceiptHandle": r} for j, r in enumerate(chunk)])
        self.rows, self.receipts = [], []

    def run(self):
        try:
            while True:
                resp = self.sqs.receive_message(QueueUrl=QUEUE_URL, MaxNumberOfMessages=10,
                                                WaitTimeSeconds=1, AttributeNames=["SentTimestamp"])
                messages = resp.get("Messages", [])
                if not messages:
                    break
                for m in messages:
                    try:
                        self.rows.append(to_row(m))
                    except (ValueError, KeyError, TypeError, AttributeError) as e:
                        print("skipped %s: %s" % (m["MessageId"], e), file=sys.stderr)
                    self.receipts.append(m["ReceiptHandle"])
                if len(self.rows) >= FLUSH_ROWS:
                    self.flush()
            self.flush()
        except Exception as e:
            self.error = e
        finally:
            self.conn.close()


def main():
    conn = psycopg2.connect(os.environ.get("DATABASE_URL", ""))
    with conn.cursor() as cur:
        cur.execute(DDL)
    conn.commit()
    conn.close()
    workers = [Worker() for _ in range(THREADS)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    print("copied %d" % sum(w.count for w in workers), file=sys.stderr)
    errors = [w.error for w in workers if w.error]
    if errors:
        print("error: %r" % errors[0], file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
