#!/usr/bin/env bash
# Start/stop one SQS emulator on 127.0.0.1 (a free port) with the queue login-queue.
#
#   tests/harness/sqs.sh start NAME DIR [--visibility S] [--fifo]
#                                    NAME: fauxqs | local-aws-sqs | sqslite
#   --fifo: the queue is the FIFO queue login-queue.fifo instead (fauxqs implements message
#   groups and deduplication; send to it with sqs.js send --group-field F).
#   tests/harness/sqs.sh stop NAME DIR
#
# start backgrounds `node tests/harness/sqs.js start NAME`, waits until it listens, creates
# login-queue and writes:
#   DIR/NAME.pid   the node process id
#   DIR/NAME.log   its output
#   DIR/NAME.env   export AWS_ENDPOINT_URL=http://127.0.0.1:PORT SQS_QUEUE_URL=... AWS_REGION=us-east-1
#                  SQS_EMULATOR=NAME SQS_EMULATOR_PROTOCOLS="json query"|json|query
# (source it). sqslite's queue URL is http://localhost:PORT/queues/login-queue: sqslite finds
# queues only under that exact prefix. stop sends SIGTERM to the recorded pid and waits.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cmd="${1:-}"; name="${2:-}"; dir="${3:-}"
usage() { echo "usage: $0 start|stop fauxqs|local-aws-sqs|sqslite DIR [--visibility S] [--fifo]" >&2; exit 2; }
[[ -n "$cmd" && -n "$name" && -n "$dir" ]] || usage
case "$name" in
  fauxqs) protocols="json" ;;
  local-aws-sqs) protocols="json query" ;;
  sqslite) protocols="query" ;;
  *) usage ;;
esac
shift 3
visibility=30
queue=login-queue
while [[ $# -gt 0 ]]; do
  case "$1" in
    --visibility) visibility="$2"; shift 2 ;;
    --fifo) queue=login-queue.fifo; shift ;;
    *) usage ;;
  esac
done

stop() {
  local pidf="$dir/$name.pid"
  [[ -f "$pidf" ]] || return 0
  local pid; pid="$(cat "$pidf")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  fi
  rm -f "$pidf" "$dir/$name.port" "$dir/$name.env"
}

start() {
  mkdir -p "$dir"
  stop
  local portf="$dir/$name.port"
  rm -f "$portf"
  node "$here/sqs.js" start "$name" --port-file "$portf" >"$dir/$name.log" 2>&1 &
  local pid=$!
  echo "$pid" >"$dir/$name.pid"
  for _ in $(seq 1 200); do
    [[ -s "$portf" ]] && break
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "sqs.sh: $name exited at start-up:" >&2; cat "$dir/$name.log" >&2; rm -f "$dir/$name.pid"; exit 1
    fi
    sleep 0.05
  done
  [[ -s "$portf" ]] || { echo "sqs.sh: $name did not start in 10 s" >&2; stop; exit 1; }
  local endpoint; endpoint="$(cat "$portf")"
  local create_ep="$endpoint"
  # sqslite builds the queue URL from the request's Host header and then only recognises
  # http://localhost:PORT/queues/NAME; sqs.js connects to 127.0.0.1 for "localhost".
  [[ "$name" == sqslite ]] && create_ep="${endpoint/127.0.0.1/localhost}"
  local qurl
  if ! qurl="$(node "$here/sqs.js" create-queue "$create_ep" "$queue" --visibility "$visibility")"; then
    echo "sqs.sh: could not create $queue on $name" >&2; stop; exit 1
  fi
  cat >"$dir/$name.env.tmp" <<ENV
export AWS_ENDPOINT_URL=$endpoint SQS_QUEUE_URL=$qurl AWS_REGION=us-east-1
export SQS_EMULATOR=$name SQS_EMULATOR_PROTOCOLS="$protocols"
ENV
  mv "$dir/$name.env.tmp" "$dir/$name.env"
  echo "sqs.sh: $name at $endpoint, queue $qurl (pid $pid)"
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  *) usage ;;
esac
