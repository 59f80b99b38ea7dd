#!/usr/bin/env node
// SQS emulators for etlua's tests, and a small SQS client to drive them.
//
// Servers (foreground until SIGTERM/SIGINT; always bound to 127.0.0.1 only):
//   node tests/harness/sqs.js start fauxqs|local-aws-sqs|sqslite [--port N] [--port-file F]
//     prints the endpoint URL (http://127.0.0.1:PORT) on stdout once listening, and writes it
//     (atomically) to F. Port 0 / no --port = a free port chosen by the kernel.
//
// Client (SigV4-signed with AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, default test/test,
// region AWS_REGION, default us-east-1; protocol --protocol json|query|auto, default auto =
// JSON if the endpoint answers JSON, else query):
//   create-queue ENDPOINT NAME [--visibility S]       prints the queue URL (a NAME ending in
//                                                       .fifo makes a FIFO queue)
//   get-queue-url ENDPOINT NAME                         prints the queue URL
//   send ENDPOINT QUEUE_URL FILE|- [--concurrency N] [--group-field F] [--attributes-field A]
//                                                       one body per line (empty lines skipped);
//                                                       SendMessageBatch, 10 per call; prints
//                                                       "sent N" (stderr: failures, exit 1).
//                                                       --group-field F (FIFO queues): the
//                                                       MessageGroupId is the body's JSON field F
//                                                       ("none" when absent), the
//                                                       MessageDeduplicationId the line number and
//                                                       a hash of the body; batches are sent one
//                                                       after the other, in file order.
//                                                       --attributes-field A: the body's JSON
//                                                       object A (name -> string) is sent as
//                                                       String message attributes
//   depth ENDPOINT QUEUE_URL                            prints "VISIBLE NOT_VISIBLE"
//   watch-empty ENDPOINT QUEUE_URL [--every MS] [--max S]
//                                                       prints "ready" after its first look at
//                                                       the depth, then "empty SECONDS" (since
//                                                       ready) once no message is visible or in
//                                                       flight, looking every MS ms (default
//                                                       20); exit 1 after S seconds (600). The
//                                                       benchmark's clock of a drain, the same
//                                                       for every client
//   purge ENDPOINT QUEUE_URL
//   receive ENDPOINT QUEUE_URL [--max N] [--wait S] [--delete]
//                                                       one JSON line per message:
//                                                       {id, receipt, body, attributes}
//   attributes ENDPOINT QUEUE_URL                       all queue attributes as JSON
//   detect ENDPOINT                                     prints json|query
//
// Emulator notes (read from the packages' sources; details in tests/harness/SQS-EMULATORS.md):
//   fauxqs 1.9.2: JSON protocol only for SQS; queues looked up by exact URL string.
//   local-aws-sqs 2.0.2: JSON and query.
//   sqslite 2.1.1: query only; queue URL must be http://localhost:PORT/queues/NAME.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const http = require('node:http');
const https = require('node:https');
const crypto = require('node:crypto');
const { pathToFileURL } = require('node:url');

const ACCOUNT = '000000000000';

function die(msg, code = 2) {
  process.stderr.write(`sqs.js: ${msg}\n`);
  process.exit(code);
}

function parseArgs(argv, spec) {
  // spec: {flag: 'value'|'bool'}; returns {pos: [], opts: {}}
  const pos = [];
  const opts = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a.startsWith('--') && a.length > 2) {
      let name = a.slice(2);
      let val;
      const eq = name.indexOf('=');
      if (eq >= 0) { val = name.slice(eq + 1); name = name.slice(0, eq); }
      if (!(name in spec)) die(`unknown option --${name}`);
      if (spec[name] === 'bool') { opts[name] = true; continue; }
      if (val === undefined) {
        if (i + 1 >= argv.length) die(`--${name} needs a value`);
        val = argv[++i];
      }
      opts[name] = val;
    } else {
      pos.push(a);
    }
  }
  return { pos, opts };
}

// ---------------------------------------------------------------- servers

function packageDir(name) {
  for (const dir of module.paths) {
    const p = path.join(dir, name);
    if (fs.existsSync(path.join(p, 'package.json'))) return p;
  }
  die(`package ${name} is not installed (run npm ci in the repository root)`);
}

async function startFauxqs(port) {
  // fauxqs's CLI and startFauxqs() listen on 0.0.0.0; buildApp() gives us the Fastify app to
  // listen where we choose. The store is passed in with host unset so that queue URLs are
  // built from the request's Host header (http://127.0.0.1:PORT/000000000000/NAME) instead
  // of http://sqs.REGION.localhost:PORT/... (fauxqs looks queues up by the exact URL string).
  const dir = packageDir('fauxqs');
  const { buildApp } = await import(pathToFileURL(path.join(dir, 'dist', 'app.js')).href);
  const { SqsStore } = await import(pathToFileURL(path.join(dir, 'dist', 'sqs', 'sqsStore.js')).href);
  const sqsStore = new SqsStore();
  sqsStore.host = '';
  const app = buildApp({ logger: false, stores: { sqsStore } });
  await app.listen({ host: '127.0.0.1', port });
  return { port: app.server.address().port, close: () => app.close() };
}

async function startLocalAwsSqs(port) {
  const { createSqsServer } = require(packageDir('local-aws-sqs'));
  const server = await createSqsServer({
    hostname: '127.0.0.1', port, accountId: ACCOUNT, region: 'us-east-1',
    emulateQueueCreationLifecycle: false, emulateLazyQueues: false,
  });
  return {
    port: server.address().port,
    close: () => new Promise((res) => { server.close(() => res()); server.closeAllConnections?.(); }),
  };
}

async function startSqslite(port) {
  // sqslite 2.1.1 registers the deprecated fastify-formbody: keep its warning off stderr.
  process.removeAllListeners('warning');
  const sqslite = require(packageDir('sqslite'));
  const app = sqslite({ logger: false });
  await app.listen({ host: '127.0.0.1', port });
  return { port: app.server.address().port, close: () => app.close() };
}

const SERVERS = { fauxqs: startFauxqs, 'local-aws-sqs': startLocalAwsSqs, sqslite: startSqslite };

async function cmdStart(argv) {
  const { pos, opts } = parseArgs(argv, { port: 'value', 'port-file': 'value' });
  const name = pos[0];
  if (!SERVERS[name]) die(`start: emulator must be one of ${Object.keys(SERVERS).join(', ')}`);
  const port = opts.port === undefined ? 0 : Number(opts.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) die('start: bad --port');
  let srv;
  try {
    srv = await SERVERS[name](port);
  } catch (e) {
    die(`start ${name}: ${e.message}`, 1);
  }
  const url = `http://127.0.0.1:${srv.port}`;
  if (opts['port-file']) {
    const tmp = `${opts['port-file']}.tmp${process.pid}`;
    fs.writeFileSync(tmp, url + '\n');
    fs.renameSync(tmp, opts['port-file']);
  }
  process.stdout.write(url + '\n');
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    const t = setTimeout(() => process.exit(0), 3000);
    t.unref();
    try { await srv.close(); } catch (_) { /* exiting anyway */ }
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

// ---------------------------------------------------------------- client

const keepAliveHttp = new http.Agent({ keepAlive: true, maxSockets: 64 });
const keepAliveHttps = new https.Agent({ keepAlive: true, maxSockets: 64 });

function sha256hex(s) { return crypto.createHash('sha256').update(s).digest('hex'); }
function hmac(k, s) { return crypto.createHmac('sha256', k).update(s).digest(); }

// AWS Signature Version 4 over host, content-type, x-amz-date (and x-amz-target).
function sign(method, url, headers, body, region) {
  const ak = process.env.AWS_ACCESS_KEY_ID || 'test';
  const sk = process.env.AWS_SECRET_ACCESS_KEY || 'test';
  const now = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  const date = now.slice(0, 8);
  headers['x-amz-date'] = now;
  if (process.env.AWS_SESSION_TOKEN) headers['x-amz-security-token'] = process.env.AWS_SESSION_TOKEN;
  const names = Object.keys(headers).map((h) => h.toLowerCase()).sort();
  const lower = {};
  for (const [k, v] of Object.entries(headers)) lower[k.toLowerCase()] = String(v).trim();
  const canonHeaders = names.map((n) => `${n}:${lower[n]}\n`).join('');
  const signed = names.join(';');
  const canon = [method, url.pathname || '/', '', canonHeaders, signed, sha256hex(body)].join('\n');
  const scope = `${date}/${region}/sqs/aws4_request`;
  const sts = ['AWS4-HMAC-SHA256', now, scope, sha256hex(canon)].join('\n');
  let k = hmac('AWS4' + sk, date);
  k = hmac(k, region);
  k = hmac(k, 'sqs');
  k = hmac(k, 'aws4_request');
  const sig = crypto.createHmac('sha256', k).update(sts).digest('hex');
  headers.authorization = `AWS4-HMAC-SHA256 Credential=${ak}/${scope}, SignedHeaders=${signed}, Signature=${sig}`;
}

// POST body to endpoint; resolves {status, type, text}. "localhost" is connected to as
// 127.0.0.1 while the Host header keeps "localhost:PORT" (sqslite builds queue URLs from it).
function post(endpoint, headers, body, timeoutMs = 30000) {
  const url = new URL(endpoint);
  const region = process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION || 'us-east-1';
  const h = { host: url.host, 'content-type': headers['content-type'], ...headers };
  sign('POST', url, h, body, region);
  h['content-length'] = Buffer.byteLength(body);
  const mod = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.request({
      method: 'POST',
      hostname: url.hostname === 'localhost' ? '127.0.0.1' : url.hostname.replace(/^\[|\]$/g, ''),
      port: url.port || (url.protocol === 'https:' ? 443 : 80),
      path: '/',
      headers: h,
      agent: url.protocol === 'https:' ? keepAliveHttps : keepAliveHttp,
      timeout: timeoutMs,
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({
        status: res.statusCode,
        type: String(res.headers['content-type'] || ''),
        text: Buffer.concat(chunks).toString('utf8'),
      }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

class SqsError extends Error {
  constructor(msg, retryable) { super(msg); this.retryable = retryable; }
}

async function callJson(endpoint, action, params) {
  const r = await post(endpoint, {
    'content-type': 'application/x-amz-json-1.0',
    'x-amz-target': `AmazonSQS.${action}`,
  }, JSON.stringify(params));
  let data;
  try { data = r.text ? JSON.parse(r.text) : {}; } catch (_) {
    throw new SqsError(`${action}: HTTP ${r.status}, not JSON: ${r.text.slice(0, 200)}`, r.status >= 500);
  }
  if (r.status !== 200) {
    const t = data.__type || data.code || data.Code || '';
    throw new SqsError(`${action}: HTTP ${r.status} ${t} ${data.message || data.Message || ''}`.trim(),
      r.status >= 500 || /Throttl|RequestThrottled/.test(t));
  }
  return data;
}

function xmlUnescape(s) {
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|lt|gt|amp|quot|apos);/g, (m, e) => {
    if (e[0] === '#') return String.fromCodePoint(e[1] === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
    return { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" }[e];
  });
}
// Every <tag>...</tag> inner text (no nesting of the same tag in SQS responses).
function xmlAll(xml, tag) {
  const re = new RegExp(`<${tag}(?:\\s[^>]*)?>([\\s\\S]*?)</${tag}>`, 'g');
  const out = [];
  let m;
  while ((m = re.exec(xml)) !== null) out.push(m[1]);
  return out;
}
function xmlOne(xml, tag) {
  const a = xmlAll(xml, tag);
  return a.length ? xmlUnescape(a[0]) : undefined;
}

async function callQuery(endpoint, action, fields) {
  const form = new URLSearchParams({ Action: action, Version: '2012-11-05', ...fields });
  const r = await post(endpoint, { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
    form.toString());
  if (r.status !== 200 || /is not implemented/.test(r.text) || !r.text.trimStart().startsWith('<')) {
    const code = xmlOne(r.text, 'Code') || '';
    throw new SqsError(`${action}: HTTP ${r.status} ${code} ${xmlOne(r.text, 'Message') || r.text.slice(0, 200)}`.trim(),
      r.status >= 500 || /Throttl/.test(code));
  }
  return r.text;
}

const protocolCache = new Map();
async function protocolFor(endpoint, wanted) {
  if (wanted && wanted !== 'auto') return wanted;
  if (process.env.SQS_PROTOCOL && process.env.SQS_PROTOCOL !== 'auto') return process.env.SQS_PROTOCOL;
  if (protocolCache.has(endpoint)) return protocolCache.get(endpoint);
  const r = await post(endpoint, {
    'content-type': 'application/x-amz-json-1.0', 'x-amz-target': 'AmazonSQS.ListQueues',
  }, '{}');
  let p = 'query';
  if (r.status === 200 && /json/.test(r.type)) {
    try { JSON.parse(r.text); p = 'json'; } catch (_) { /* query */ }
  }
  protocolCache.set(endpoint, p);
  return p;
}

// The client operations, both protocols.
const ops = {
  async createQueue(ep, proto, name, attrs) {
    if (proto === 'json') return (await callJson(ep, 'CreateQueue', { QueueName: name, Attributes: attrs })).QueueUrl;
    const f = { QueueName: name };
    Object.entries(attrs).forEach(([k, v], i) => { f[`Attribute.${i + 1}.Name`] = k; f[`Attribute.${i + 1}.Value`] = v; });
    return xmlOne(await callQuery(ep, 'CreateQueue', f), 'QueueUrl');
  },
  async getQueueUrl(ep, proto, name) {
    if (proto === 'json') return (await callJson(ep, 'GetQueueUrl', { QueueName: name })).QueueUrl;
    return xmlOne(await callQuery(ep, 'GetQueueUrl', { QueueName: name }), 'QueueUrl');
  },
  // entries: [{Id, MessageBody[, MessageGroupId, MessageDeduplicationId]}] -> [{Id, Code, Message}] failed entries
  async sendBatch(ep, proto, queueUrl, entries) {
    if (proto === 'json') {
      const d = await callJson(ep, 'SendMessageBatch', { QueueUrl: queueUrl, Entries: entries });
      const ok = new Set((d.Successful || []).map((s) => s.Id));
      const failed = (d.Failed || []).map((f) => ({ Id: f.Id, Code: f.Code, Message: f.Message }));
      for (const e of entries) if (!ok.has(e.Id) && !failed.some((f) => f.Id === e.Id)) failed.push({ Id: e.Id, Code: 'Missing', Message: 'not in the response' });
      return failed;
    }
    const f = { QueueUrl: queueUrl };
    entries.forEach((e, i) => {
      f[`SendMessageBatchRequestEntry.${i + 1}.Id`] = e.Id;
      f[`SendMessageBatchRequestEntry.${i + 1}.MessageBody`] = e.MessageBody;
      if (e.MessageGroupId !== undefined) {
        f[`SendMessageBatchRequestEntry.${i + 1}.MessageGroupId`] = e.MessageGroupId;
        f[`SendMessageBatchRequestEntry.${i + 1}.MessageDeduplicationId`] = e.MessageDeduplicationId;
      }
      Object.entries(e.MessageAttributes || {}).forEach(([name, v], j) => {
        const a = `SendMessageBatchRequestEntry.${i + 1}.MessageAttribute.${j + 1}`;
        f[`${a}.Name`] = name;
        f[`${a}.Value.DataType`] = v.DataType;
        f[`${a}.Value.StringValue`] = v.StringValue;
      });
    });
    const xml = await callQuery(ep, 'SendMessageBatch', f);
    // sqslite answers each entry's Id as the MD5 hex of the Id sent: accept both.
    const byAnyId = new Map();
    for (const e of entries) { byAnyId.set(e.Id, e.Id); byAnyId.set(crypto.createHash('md5').update(e.Id).digest('hex'), e.Id); }
    const ok = new Set(xmlAll(xml, 'SendMessageBatchResultEntry').map((x) => byAnyId.get(xmlOne(x, 'Id'))));
    const failed = xmlAll(xml, 'BatchResultErrorEntry').map((x) => ({ Id: byAnyId.get(xmlOne(x, 'Id')) || xmlOne(x, 'Id'), Code: xmlOne(x, 'Code'), Message: xmlOne(x, 'Message') }));
    for (const e of entries) if (!ok.has(e.Id) && !failed.some((x) => x.Id === e.Id)) failed.push({ Id: e.Id, Code: 'Missing', Message: 'not in the response' });
    return failed;
  },
  async attributes(ep, proto, queueUrl, names) {
    if (proto === 'json') return (await callJson(ep, 'GetQueueAttributes', { QueueUrl: queueUrl, AttributeNames: names })).Attributes || {};
    const f = { QueueUrl: queueUrl };
    names.forEach((n, i) => { f[`AttributeName.${i + 1}`] = n; });
    const out = {};
    for (const a of xmlAll(await callQuery(ep, 'GetQueueAttributes', f), 'Attribute')) out[xmlOne(a, 'Name')] = xmlOne(a, 'Value');
    return out;
  },
  async purge(ep, proto, queueUrl) {
    if (proto === 'json') return callJson(ep, 'PurgeQueue', { QueueUrl: queueUrl });
    return callQuery(ep, 'PurgeQueue', { QueueUrl: queueUrl });
  },
  async receive(ep, proto, queueUrl, max, wait) {
    if (proto === 'json') {
      const d = await callJson(ep, 'ReceiveMessage', {
        QueueUrl: queueUrl, MaxNumberOfMessages: max, WaitTimeSeconds: wait,
        AttributeNames: ['All'], MessageSystemAttributeNames: ['All'], MessageAttributeNames: ['All'],
      });
      return (d.Messages || []).map((m) => ({ id: m.MessageId, receipt: m.ReceiptHandle, body: m.Body, attributes: m.Attributes || {} }));
    }
    const xml = await callQuery(ep, 'ReceiveMessage', {
      QueueUrl: queueUrl, MaxNumberOfMessages: String(max), WaitTimeSeconds: String(wait),
      'AttributeName.1': 'All', 'MessageSystemAttributeName.1': 'All', 'MessageAttributeName.1': 'All',
    });
    return xmlAll(xml, 'Message').map((m) => {
      const attributes = {};
      for (const a of xmlAll(m, 'Attribute')) attributes[xmlOne(a, 'Name')] = xmlOne(a, 'Value');
      return { id: xmlOne(m, 'MessageId'), receipt: xmlOne(m, 'ReceiptHandle'), body: xmlOne(m, 'Body'), attributes };
    });
  },
  async deleteBatch(ep, proto, queueUrl, entries) {
    if (proto === 'json') return callJson(ep, 'DeleteMessageBatch', { QueueUrl: queueUrl, Entries: entries });
    const f = { QueueUrl: queueUrl };
    entries.forEach((e, i) => {
      f[`DeleteMessageBatchRequestEntry.${i + 1}.Id`] = e.Id;
      f[`DeleteMessageBatchRequestEntry.${i + 1}.ReceiptHandle`] = e.ReceiptHandle;
    });
    return callQuery(ep, 'DeleteMessageBatch', f);
  },
};

async function withRetry(fn, what) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      const retryable = e.retryable !== false;   // network errors have no flag: retry them
      if (!retryable || attempt >= 4) throw new Error(`${what}: ${e.message}`);
      await new Promise((r) => setTimeout(r, 100 * 2 ** attempt));
    }
  }
}

const MAX_BATCH_BYTES = 256 * 1024;

async function cmdSend(pos, opts, proto) {
  const [ep, queueUrl, file] = pos;
  if (!ep || !queueUrl || !file) die('usage: send ENDPOINT QUEUE_URL FILE|- [--concurrency N]');
  const text = fs.readFileSync(file === '-' ? 0 : file, 'utf8');
  const lines = text.split('\n');
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  const bodies = [];
  let skipped = 0;
  for (const l of lines) {
    const b = l.endsWith('\r') ? l.slice(0, -1) : l;
    if (b === '') skipped++; else bodies.push(b);
  }
  // batches of <= 10 entries and <= 256 KiB of bodies
  const batches = [];
  let cur = [];
  let bytes = 0;
  bodies.forEach((b, i) => {
    const n = Buffer.byteLength(b);
    if (cur.length === 10 || (cur.length && bytes + n > MAX_BATCH_BYTES)) { batches.push(cur); cur = []; bytes = 0; }
    const e = { Id: `m${i}`, MessageBody: b, line: i };
    if (opts['group-field']) {
      let g;
      try { g = JSON.parse(b)[opts['group-field']]; } catch (_) { /* not JSON: no group field */ }
      e.MessageGroupId = g === undefined || g === null ? 'none' : String(g);
      e.MessageDeduplicationId = `l${i}-${crypto.createHash('sha256').update(b).digest('hex').slice(0, 32)}`;
    }
    if (opts['attributes-field']) {
      let a;
      try { a = JSON.parse(b)[opts['attributes-field']]; } catch (_) { /* not JSON: none */ }
      if (a && typeof a === 'object') {
        e.MessageAttributes = {};
        for (const [k, v] of Object.entries(a)) e.MessageAttributes[k] = { DataType: 'String', StringValue: String(v) };
      }
    }
    cur.push(e);
    bytes += n;
  });
  if (cur.length) batches.push(cur);

  // FIFO: one batch at a time, so each group's messages reach the queue in file order.
  const conc = opts['group-field'] ? 1 : Math.max(1, Number(opts.concurrency || 8));
  const failures = [];
  let sent = 0;
  let next = 0;
  const t0 = Date.now();
  async function worker() {
    while (next < batches.length) {
      const batch = batches[next++];
      const entries = batch.map(({ Id, MessageBody, MessageGroupId, MessageDeduplicationId, MessageAttributes }) => {
        const e = MessageGroupId === undefined ? { Id, MessageBody } : { Id, MessageBody, MessageGroupId, MessageDeduplicationId };
        if (MessageAttributes) e.MessageAttributes = MessageAttributes;
        return e;
      });
      try {
        const failed = await withRetry(() => ops.sendBatch(ep, proto, queueUrl, entries), 'SendMessageBatch');
        sent += entries.length - failed.length;
        for (const f of failed) failures.push(`line ${Number(f.Id.slice(1)) + 1}: ${f.Code} ${f.Message || ''}`);
      } catch (e) {
        for (const b of batch) failures.push(`line ${b.line + 1}: ${e.message}`);
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(conc, batches.length) }, worker));
  const secs = (Date.now() - t0) / 1000;
  process.stdout.write(`sent ${sent}\n`);
  process.stderr.write(`sqs.js: sent ${sent} of ${bodies.length} messages in ${batches.length} batches, ${secs.toFixed(2)} s` +
    (skipped ? `, ${skipped} empty lines skipped` : '') + (failures.length ? `, ${failures.length} FAILED` : '') + '\n');
  if (failures.length) {
    for (const f of failures.slice(0, 20)) process.stderr.write(`sqs.js: ${f}\n`);
    if (failures.length > 20) process.stderr.write(`sqs.js: ... ${failures.length - 20} more\n`);
    process.exit(1);
  }
}

async function cmdClient(cmd, argv) {
  const { pos, opts } = parseArgs(argv, {
    protocol: 'value', visibility: 'value', concurrency: 'value', max: 'value', wait: 'value', delete: 'bool',
    every: 'value',
    'group-field': 'value', 'attributes-field': 'value',
  });
  const ep = pos[0];
  if (!ep) die(`usage: ${cmd} ENDPOINT ...`);
  const proto = await protocolFor(ep, opts.protocol);
  const out = (s) => process.stdout.write(s + '\n');
  switch (cmd) {
    case 'detect':
      return out(proto);
    case 'create-queue': {
      if (!pos[1]) die('usage: create-queue ENDPOINT NAME [--visibility S]');
      const attrs = {};
      if (opts.visibility !== undefined) attrs.VisibilityTimeout = String(Number(opts.visibility));
      if (pos[1].endsWith('.fifo')) attrs.FifoQueue = 'true';
      return out(await withRetry(() => ops.createQueue(ep, proto, pos[1], attrs), 'CreateQueue'));
    }
    case 'get-queue-url':
      if (!pos[1]) die('usage: get-queue-url ENDPOINT NAME');
      return out(await ops.getQueueUrl(ep, proto, pos[1]));
    case 'send':
      return cmdSend(pos, opts, proto);
    case 'depth': {
      if (!pos[1]) die('usage: depth ENDPOINT QUEUE_URL');
      const a = await ops.attributes(ep, proto, pos[1], ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible']);
      // sqslite has no NotVisible attribute (and counts in-flight messages as visible): 0.
      return out(`${Number(a.ApproximateNumberOfMessages || 0)} ${Number(a.ApproximateNumberOfMessagesNotVisible || 0)}`);
    }
    case 'watch-empty': {
      if (!pos[1]) die('usage: watch-empty ENDPOINT QUEUE_URL [--every MS] [--max S]');
      const every = Number(opts.every || 20);
      const deadline = Date.now() + 1000 * Number(opts.max || 600);
      const names = ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'];
      const empty = async () => {
        const a = await ops.attributes(ep, proto, pos[1], names);
        return Number(a.ApproximateNumberOfMessages || 0) + Number(a.ApproximateNumberOfMessagesNotVisible || 0) === 0;
      };
      await empty();
      const t0 = process.hrtime.bigint();
      out('ready');
      for (;;) {
        await new Promise((r) => setTimeout(r, every));
        if (await empty()) return out(`empty ${(Number(process.hrtime.bigint() - t0) / 1e9).toFixed(3)}`);
        if (Date.now() > deadline) die('watch-empty: the queue did not empty in time', 1);
      }
    }
    case 'attributes':
      if (!pos[1]) die('usage: attributes ENDPOINT QUEUE_URL');
      return out(JSON.stringify(await ops.attributes(ep, proto, pos[1], ['All'])));
    case 'purge':
      if (!pos[1]) die('usage: purge ENDPOINT QUEUE_URL');
      await ops.purge(ep, proto, pos[1]);
      return undefined;
    case 'receive': {
      if (!pos[1]) die('usage: receive ENDPOINT QUEUE_URL [--max N] [--wait S] [--delete]');
      const msgs = await ops.receive(ep, proto, pos[1], Number(opts.max || 10), Number(opts.wait || 0));
      for (const m of msgs) out(JSON.stringify(m));
      if (opts.delete && msgs.length) {
        await ops.deleteBatch(ep, proto, pos[1], msgs.map((m, i) => ({ Id: `d${i}`, ReceiptHandle: m.receipt })));
      }
      return undefined;
    }
    default:
      return die(`unknown command ${cmd}`);
  }
}

async function main() {
  const [cmd, ...rest] = process.argv.slice(2);
  if (!cmd || cmd === '--help' || cmd === '-h') {
    const src = fs.readFileSync(__filename, 'utf8').split('\n');
    process.stdout.write(src.slice(1, src.findIndex((l) => l.startsWith("'use strict'"))).map((l) => l.replace(/^\/\/ ?/, '')).join('\n') + '\n');
    return;
  }
  if (cmd === 'start') return cmdStart(rest);
  try {
    await cmdClient(cmd, rest);
  } catch (e) {
    die(e.message, 1);
  }
  keepAliveHttp.destroy();
  keepAliveHttps.destroy();
}

main();
