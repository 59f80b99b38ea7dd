#!/usr/bin/env python3
"""A fault-injecting HTTP proxy for SQS (Python standard library only, 127.0.0.1 only).

usage: proxy.py --upstream http://127.0.0.1:PORT [--port 0] [--port-file F] [--control-port-file F]
                [--p503 P] [--pthrottle P] [--preset P] [--pstall P] [--stall-s S] [--seed S]
                [--tls CERT KEY]

--tls serves https with that certificate chain (PEM) and key instead of http (the origin and the
port file say https://; tests/integration/tls.sh), still forwarding to an http upstream.

etlua talks to the proxy (AWS_ENDPOINT_URL=http://127.0.0.1:PROXYPORT); the proxy forwards each
request to the upstream emulator, or instead injects one fault, drawn per request:
  503        answers HTTP 503 (text body, no AWS error code): etlua must classify it "server";
  throttle   answers HTTP 400 {"__type":"com.amazonaws.sqs#ThrottlingException", ...} with
             x-amzn-query-error: ThrottlingException;Sender (an XML ErrorResponse with Code
             Throttling to a query-protocol request);
  reset      resets the TCP connection (RST via SO_LINGER 0): half of them before forwarding,
             half after the upstream has acted (the answer is lost: a DeleteMessageBatch done
             but unseen, a ReceiveMessage whose messages went invisible);
  stall      waits --stall-s seconds, then forwards.
Blackout (control port, POST /blackout?seconds=30&mode=refuse|blackhole|mixed): for that long
every request is refused (connection reset without an answer) or blackholed (held unanswered
until the blackout ends, then reset); mixed = refuse during the first half, blackhole after.

Queue URLs: the proxy rewrites its own origin (http://127.0.0.1:PROXYPORT) into the upstream's
in request bodies and back in answers, so SQS_QUEUE_URL may name the proxy (fauxqs looks queues
up by the exact URL string; it does not check SigV4 signatures, which the rewrite would break).

Control port (GET /stats): JSON counters {requests, forwarded, faults: {503, throttle, reset_before,
reset_after, stall, blackout_refused, blackout_held}, actions: {...}, blackout: {start, end}}.
The counters are also printed as JSON on stdout at SIGTERM/SIGINT.
"""
import argparse
import http.client
import http.server
import json
import os
import random
import signal
import socket
import socketserver
import ssl
import struct
import sys
import threading
import time
import urllib.parse

LOCK = threading.Lock()
STATS = {"requests": 0, "forwarded": 0,
         "faults": {"503": 0, "throttle": 0, "reset_before": 0, "reset_after": 0, "stall": 0,
                    "blackout_refused": 0, "blackout_held": 0},
         "actions": {}, "blackout": {"start": None, "end": None, "mode": None}}
BLACKOUT = {"start": 0.0, "end": 0.0, "mode": "refuse"}
ARGS = None
RNG = random.Random()
UP = None          # (host, port)
UP_ORIGIN = b""
MY_ORIGIN = b""


def bump(kind, key=None):
    with LOCK:
        if key is None:
            STATS[kind] += 1
        else:
            STATS[kind][key] = STATS[kind].get(key, 0) + 1


def rst(sock):
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


def blackout_now():
    """None, or 'refuse' / 'blackhole' for the blackout in force now."""
    now = time.time()
    with LOCK:
        start, end, mode = BLACKOUT["start"], BLACKOUT["end"], BLACKOUT["mode"]
    if not (start <= now < end):
        return None
    if mode == "mixed":
        return "refuse" if now < (start + end) / 2 else "blackhole"
    return mode


def rewrite(data, a, b):
    if not data:
        return data
    return data.replace(a, b).replace(a.replace(b"/", b"\\/"), b.replace(b"/", b"\\/"))


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet
        pass

    def setup(self):
        super().setup()
        # headers and body go out in separate writes: without this, Nagle + delayed ACK add
        # 40 ms to every answer
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def apply_blackout(self):
        mode = blackout_now()
        if not mode:
            return False
        if mode == "refuse":
            bump("faults", "blackout_refused")
        else:
            bump("faults", "blackout_held")
            while blackout_now():
                time.sleep(0.05)
        self.close_connection = True
        rst(self.connection)
        return True

    def send_plain(self, status, body, ctype, extra=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.do_POST()

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        bump("requests")
        target = self.headers.get("X-Amz-Target") or ""
        action = target.rsplit(".", 1)[-1] if target else \
            urllib.parse.parse_qs(body.decode("utf-8", "replace")).get("Action", ["?"])[0]
        bump("actions", action)
        if self.apply_blackout():
            return
        query = "x-www-form-urlencoded" in (self.headers.get("Content-Type") or "")
        r = RNG.random()
        p = ARGS.p503
        if r < p:
            bump("faults", "503")
            return self.send_plain(503, b"Service Unavailable", "text/plain")
        p += ARGS.pthrottle
        if r < p:
            bump("faults", "throttle")
            if query:
                xml = (b'<?xml version="1.0"?><ErrorResponse xmlns="http://queue.amazonaws.com/doc/2012-11-05/">'
                       b'<Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message>'
                       b'</Error><RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>')
                return self.send_plain(400, xml, "text/xml")
            js = json.dumps({"__type": "com.amazonaws.sqs#ThrottlingException",
                             "message": "Rate exceeded"}).encode()
            return self.send_plain(400, js, "application/x-amz-json-1.0",
                                   [("x-amzn-query-error", "ThrottlingException;Sender")])
        p += ARGS.preset
        reset_after = False
        if r < p:
            if RNG.random() < 0.5:
                bump("faults", "reset_before")
                self.close_connection = True
                return rst(self.connection)
            reset_after = True
        else:
            p += ARGS.pstall
            if r < p:
                bump("faults", "stall")
                time.sleep(ARGS.stall_s)
                if self.apply_blackout():
                    return
        # forward
        body = rewrite(body, MY_ORIGIN, UP_ORIGIN)
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ("host", "content-length", "connection", "transfer-encoding")}
        headers["Host"] = "%s:%d" % UP
        headers["Content-Length"] = str(len(body))
        try:
            conn = http.client.HTTPConnection(UP[0], UP[1], timeout=120)
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            status, rheaders = resp.status, resp.getheaders()
            conn.close()
        except OSError as e:
            return self.send_plain(502, ("proxy: upstream: %s" % e).encode(), "text/plain")
        bump("forwarded")
        if reset_after:
            bump("faults", "reset_after")
            self.close_connection = True
            return rst(self.connection)
        if self.apply_blackout():
            return
        data = rewrite(data, UP_ORIGIN, MY_ORIGIN)
        self.send_response(status)
        for k, v in rheaders:
            if k.lower() not in ("content-length", "connection", "transfer-encoding", "keep-alive", "date"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def handle(self):
        # One connection, several requests (keep-alive); a blackout is applied per request.
        self.close_connection = True
        self.handle_one_request()
        while not self.close_connection:
            self.handle_one_request()


class Control(http.server.BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):
        pass

    def reply(self, obj):
        data = json.dumps(obj, sort_keys=True).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        with LOCK:
            self.reply(STATS)

    def do_POST(self):
        u = urllib.parse.urlparse(self.path)
        q = urllib.parse.parse_qs(u.query)
        if u.path == "/blackout":
            secs = float(q.get("seconds", ["30"])[0])
            mode = q.get("mode", ["mixed"])[0]
            now = time.time()
            with LOCK:
                BLACKOUT.update(start=now, end=now + secs, mode=mode)
                STATS["blackout"] = {"start": now, "end": now + secs, "mode": mode}
            return self.reply({"blackout": secs, "mode": mode})
        if u.path == "/rates":  # change the fault shares at run time
            for k in ("p503", "pthrottle", "preset", "pstall"):
                if k in q:
                    setattr(ARGS, k, float(q[k][0]))
            return self.reply({k: getattr(ARGS, k) for k in ("p503", "pthrottle", "preset", "pstall")})
        self.send_error(404)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def write_atomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def main():
    global ARGS, UP, UP_ORIGIN, MY_ORIGIN
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--control-port-file")
    ap.add_argument("--p503", type=float, default=0.03)
    ap.add_argument("--pthrottle", type=float, default=0.03)
    ap.add_argument("--preset", type=float, default=0.02)
    ap.add_argument("--pstall", type=float, default=0.01)
    ap.add_argument("--stall-s", type=float, default=3.0)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    ARGS = ap.parse_args()
    RNG.seed(ARGS.seed)
    u = urllib.parse.urlparse(ARGS.upstream)
    UP = (u.hostname, u.port or 80)
    UP_ORIGIN = ("http://%s:%d" % UP).encode()

    srv = Server(("127.0.0.1", ARGS.port), Handler)
    ctl = Server(("127.0.0.1", 0), Control)
    port = srv.server_address[1]
    scheme = "http"
    if ARGS.tls:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(ARGS.tls[0], ARGS.tls[1])
        srv.socket = tls.wrap_socket(srv.socket, server_side=True)
        scheme = "https"
    MY_ORIGIN = ("%s://127.0.0.1:%d" % (scheme, port)).encode()
    threading.Thread(target=ctl.serve_forever, daemon=True).start()

    def stop(signum, frame):
        with LOCK:
            print(json.dumps(STATS, sort_keys=True), flush=True)
        os._exit(0)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if ARGS.control_port_file:
        write_atomic(ARGS.control_port_file, "http://127.0.0.1:%d\n" % ctl.server_address[1])
    if ARGS.port_file:
        write_atomic(ARGS.port_file, "%s://127.0.0.1:%d\n" % (scheme, port))
    print("proxy: " + scheme + " 127.0.0.1:%d -> %s (control 127.0.0.1:%d)" % (port, ARGS.upstream, ctl.server_address[1]),
          file=sys.stderr, flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
