// A plain-socket SMTP client: sends COUNT messages, one transaction each, in one session.
//   node smtp-send.mjs PORT COUNT [DOMAIN]
// Recipients are user1@DOMAIN ... userCOUNT@DOMAIN (DOMAIN defaults to remote.example, a
// non-local domain, so the relay routes them to its smarthost). Exits non-zero on any
// reply other than the one expected.
import net from 'node:net';

const [port, count = '5', domain = 'remote.example'] = process.argv.slice(2);
if (!port) {
  console.error('usage: node smtp-send.mjs PORT COUNT [DOMAIN]');
  process.exit(2);
}

const socket = net.connect({ host: '127.0.0.1', port: Number(port) });
socket.setEncoding('latin1');
socket.setTimeout(30000, () => { console.error('smtp-send: time-out'); process.exit(1); });
socket.on('error', (e) => { console.error('smtp-send:', e.message); process.exit(1); });

// Replies, whole (multi-line replies joined), in order.
let buffer = '';
let lines = [];
const waiting = [];
const replies = [];
socket.on('data', (chunk) => {
  buffer += chunk;
  let i;
  while ((i = buffer.indexOf('\r\n')) >= 0) {
    const line = buffer.slice(0, i);
    buffer = buffer.slice(i + 2);
    lines.push(line);
    if (/^\d{3} /.test(line) || /^\d{3}$/.test(line)) {
      const reply = { code: Number(line.slice(0, 3)), text: lines.join('\n') };
      lines = [];
      if (waiting.length) waiting.shift()(reply); else replies.push(reply);
    }
  }
});
const nextReply = () => new Promise((resolve) => (replies.length ? resolve(replies.shift()) : waiting.push(resolve)));

async function step(line, expected) {
  if (line !== null) socket.write(line + '\r\n');
  const reply = await nextReply();
  if (reply.code !== expected) {
    console.error(`smtp-send: ${line ?? '(greeting)'} -> ${reply.text} (expected ${expected})`);
    process.exit(1);
  }
  return reply;
}

await step(null, 220);
await step('EHLO client.test', 250);
for (let n = 1; n <= Number(count); n++) {
  const to = `user${n}@${domain}`;
  await step('MAIL FROM:<sender@client.test>', 250);
  await step(`RCPT TO:<${to}>`, 250);
  await step('DATA', 354);
  const body = [
    'From: Sender <sender@client.test>',
    `To: <${to}>`,
    `Subject: dashboard test ${n} of ${count}`,
    `Message-ID: <dashboard-test-${n}-${Date.now()}@client.test>`,
    '',
    `Message ${n} of the RelayMta dashboard browser test.`,
    '.',
  ].join('\r\n');
  const reply = await step(body, 250);
  console.log(`smtp-send: message ${n} to <${to}>: ${reply.text}`);
}
await step('QUIT', 221);
socket.end();
