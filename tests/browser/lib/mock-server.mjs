// A stand-in for the relay's admin HTTP server, for working on the dashboard without building
// the relay: serves src/RelayMta.Admin/Dashboard/ the way the relay does (index.html at /, the
// rest at /dashboard/{file}) and a fake admin API with a few queued messages whose actions work.
//   node lib/mock-server.mjs [PORT]        (MOCK_TOKEN=secret to require a bearer token)
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const dashboard = path.resolve(here, '../../../src/RelayMta.Admin/Dashboard');
const port = Number(process.argv[2] || 8088);
const token = process.env.MOCK_TOKEN || null;
const types = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8' };

const t0 = Date.now();
const iso = (ms) => new Date(ms).toISOString();
const smarthost = 'smarthost:127.0.0.1:2526';
const messages = [];
for (let i = 1; i <= 5; i++) {
  messages.push({
    id: `00CPD${String(i).padStart(2, '0')}MOCK000`, sender: 'sender@client.test', recipients: 1, pending: 1,
    received: iso(t0 - (6 - i) * 47000), size: 300 + i * 17, state: 'deferred', nextAttempt: iso(t0 + 3600000),
    attempts: 1, destinations: [smarthost], lastError: '451 4.3.0 try later (in reply to RCPT TO)',
  });
}
messages.push({
  id: '00CPD99MOCK000', sender: '', recipients: 3, pending: 2, received: iso(t0 - 7200000), size: 48213, state: 'held',
  nextAttempt: null, attempts: 4, destinations: ['example.net', 'example.org'], lastError: 'connection refused',
});
const suspended = new Set(['example.org']);
const recent = [];
const activity = new Map(); // bucket start (s) -> counts
const count = (kind, at = Date.now()) => {
  const b = Math.floor(at / 10000) * 10;
  const c = activity.get(b) || { accepted: 0, delivered: 0, deferred: 0, bounced: 0 };
  c[kind]++;
  activity.set(b, c);
};
for (const m of messages) {
  count('accepted', Date.parse(m.received));
  count('deferred', Date.parse(m.received) + 300);
  recent.unshift({ at: iso(Date.parse(m.received) + 300), queueId: m.id, recipient: `user@remote.example`, relay: '127.0.0.1[127.0.0.1]:2526',
    tls: null, status: '4.3.0', result: 'deferred', diagnostic: '451 4.3.0 try later (in reply to RCPT TO)' });
}
recent.sort((a, b) => b.at.localeCompare(a.at));

function summary() {
  const live = messages;
  const dests = new Map();
  for (const m of live) {
    for (const d of m.destinations) {
      const s = dests.get(d) || { destination: d, messages: 0, recipients: 0, oldest: null, lastError: null, nextAttempt: null,
        connections: 0, suspended: suspended.has(d), circuitOpen: d === 'example.net' };
      s.messages++; s.recipients += m.pending;
      if (!s.oldest || m.received < s.oldest) s.oldest = m.received;
      s.lastError = m.lastError; s.nextAttempt = m.nextAttempt;
      dests.set(d, s);
    }
  }
  const oldest = live.reduce((o, m) => (!o || m.received < o ? m.received : o), null);
  return { messages: live.length, recipients: live.reduce((a, m) => a + m.pending, 0), oldest, destinations: [...dests.values()] };
}

function stats() {
  const now = Math.floor(Date.now() / 10000) * 10;
  const buckets = [];
  for (let s = now - 179 * 10; s <= now; s += 10) {
    buckets.push({ start: iso(s * 1000), ...(activity.get(s) || { accepted: 0, delivered: 0, deferred: 0, bounced: 0 }) });
  }
  return { bucketSeconds: 10, buckets, recent };
}

function deliver(m) {
  const i = messages.indexOf(m);
  if (i >= 0) messages.splice(i, 1);
  count('delivered');
  recent.unshift({ at: iso(Date.now()), queueId: m.id, recipient: 'user@remote.example', relay: '127.0.0.1[127.0.0.1]:2526', tls: null,
    status: '2.0.0', result: 'sent', diagnostic: '250 2.0.0 Ok: queued as SINK1' });
}

const json = (res, code, body) => { res.writeHead(code, { 'Content-Type': 'application/json; charset=utf-8' }); res.end(JSON.stringify(body)); };
const action = (res, affected, message) => (affected ? json(res, 200, { found: true, affected, message }) : json(res, 404, { error: message }));

http.createServer((req, res) => {
  const url = new URL(req.url, 'http://mock');
  const p = url.pathname;
  if (req.method === 'GET' && (p === '/' || p.startsWith('/dashboard/'))) {
    const file = p === '/' ? 'index.html' : p.slice('/dashboard/'.length);
    if (file.includes('..') || !fs.existsSync(path.join(dashboard, file))) return json(res, 404, { error: `no dashboard file '${file}'` });
    res.writeHead(200, { 'Content-Type': types[path.extname(file)] || 'application/octet-stream', 'Cache-Control': 'no-cache' });
    return res.end(fs.readFileSync(path.join(dashboard, file)));
  }
  if (token && req.headers.authorization !== `Bearer ${token}`) return json(res, 401, { error: 'a valid bearer token is required' });
  let m;
  if (req.method === 'GET' && p === '/api/queue') return json(res, 200, summary());
  if (req.method === 'GET' && p === '/api/stats') return json(res, 200, stats());
  if (req.method === 'GET' && p === '/api/messages') {
    const state = url.searchParams.get('state');
    if (state && !['active', 'deferred', 'held'].includes(state)) return json(res, 400, { error: `state must be active, deferred or held, not '${state}'` });
    const items = messages.filter((x) => !state || x.state === state);
    return json(res, 200, { total: items.length, page: 1, pageSize: 50, items: items.slice(0, 50) });
  }
  if ((m = /^\/api\/messages\/([^/]+)(?:\/(retry|hold|release))?$/.exec(p))) {
    const msg = messages.find((x) => x.id === decodeURIComponent(m[1]));
    if (!msg) return json(res, 404, { error: `message ${m[1]} is not in the queue` });
    if (req.method === 'DELETE' && !m[2]) {
      messages.splice(messages.indexOf(msg), 1);
      return action(res, 1, url.searchParams.get('bounce') === 'true' ? 'deleted, sender notified' : 'deleted');
    }
    if (req.method !== 'POST') return json(res, 405, { error: 'method not allowed' });
    if (m[2] === 'retry') { deliver(msg); return action(res, 1, 'retrying'); }
    if (m[2] === 'hold') { msg.state = 'held'; msg.nextAttempt = null; return action(res, 1, 'held'); }
    if (m[2] === 'release') { msg.state = 'deferred'; msg.nextAttempt = iso(Date.now() + 60000); return action(res, 1, 'released'); }
  }
  if (req.method === 'POST' && (m = /^\/api\/destinations\/([^/]+)\/(retry|suspend|resume)$/.exec(p))) {
    const d = decodeURIComponent(m[1]);
    if (m[2] === 'suspend') { suspended.add(d); return action(res, 1, 'suspended'); }
    if (m[2] === 'resume') { suspended.delete(d); return action(res, 1, 'resumed'); }
    if (d === 'broken.example') return json(res, 500, { error: 'the queue manager did not answer within 5 s' });
    const todo = messages.filter((x) => x.destinations.includes(d) && x.state !== 'held');
    todo.forEach(deliver);
    return action(res, todo.length, `retrying ${todo.length} messages`);
  }
  json(res, 404, { error: 'not found' });
}).listen(port, '127.0.0.1', () => console.log(`mock admin server on http://127.0.0.1:${port}/${token ? ' (token required)' : ''}`));
