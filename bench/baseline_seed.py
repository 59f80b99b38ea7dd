#!/usr/bin/python3
"""Seed-style baseline: the take-home as people usually write it (NOT etlua's design).

boto3 + psycopg2; receive 10 at a time; for each message: parse, mask with plain SHA-256,
INSERT one row and commit; then DeleteMessage for that message. Stops when a receive
(1 s long poll) comes back empty. Writes the same table shape (user_logins); its values need
not follow the contract (app_version is the digits run together, create_date is today).

env: SQS_QUEUE_URL, AWS_ENDPOINT_URL, AWS_REGION, libpq PG* (or DATABASE_URL).
For fauxqs (JSON-only) with Debian's botocore 1.29, AWS_DATA_PATH must hold the JSON model
written by bench/sqs_json_model.py (bench/run.sh does this).
"""
import hashlib, json, os, sys
from datetime import date

import boto3
import psycopg2

DDL = """CREATE TABLE IF NOT EXISTS user_logins(
    user_id varchar(128), device_type varchar(32),
    masked_ip varchar(256), masked_device_id varchar(256),
    locale varchar(32), app_version integer, create_date date)"""


def mask(value):
    return hashlib.sha256(value.encode()).hexdigest() if value is not None else None


def main():
    sqs = boto3.client("sqs", endpoint_url=os.environ.get("AWS_ENDPOINT_URL"),
                       region_name=os.environ.get("AWS_REGION", "us-east-1"))
    queue_url = os.environ["SQS_QUEUE_URL"]
    conn = psycopg2.connect(os.environ.get("DATABASE_URL", ""))
    cur = conn.cursor()
    cur.execute(DDL)
    conn.commit()
    n = 0
    while True:
        resp = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        messages = resp.get("Messages", [])
        if not messages:
            break
        for m in messages:
            try:
                rec = json.loads(m["Body"])
                version = rec.get("app_version")
                cur.execute(
                    "INSERT INTO user_logins (user_id, device_type, masked_ip, masked_device_id,"
                    " locale, app_version, create_date) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    (rec.get("user_id"), rec.get("device_type"), mask(rec.get("ip")),
                     mask(rec.get("device_id")), rec.get("locale"),
                     int(version.replace(".", "")) if version else None, date.today()))
                conn.commit()
                n += 1
            except Exception as e:  # what the seed does: log and move on
                conn.rollback()
                print("skipped message %s: %s" % (m["MessageId"], e), file=sys.stderr)
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
    conn.close()
    print("inserted %d" % n, file=sys.stderr)


if __name__ == "__main__":
    main()
