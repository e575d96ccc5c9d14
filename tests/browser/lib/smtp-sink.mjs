// A tiny SMTP server that plays a remote host which defers: it answers every RCPT with
// "451 4.3.0 try later" until it is told to accept (POST /accept on its control port), then
// accepts and counts the messages it receives. Loopback only. Usage:
//   node smtp-sink.mjs READY_FILE
// It listens on free ports and writes {"smtpPort", "controlPort", "pid"} to READY_FILE.
// Control: GET /state -> {accepting, messages, recipients, deferred, sessions}; POST /accept; POST /defer.
import net from 'node:net';
import http from 'node:http';
import fs from 'node:fs';

const readyFile = process.argv[2];
if (!readyFile) {
  console.error('usage: node smtp-sink.mjs READY_FILE');
  process.exit(2);
}

const state = { accepting: false, messages: 0, recipients: 0, deferred: 0, sessions: 0 };
const log = (...a) => console.log(new Date().toISOString(), 'sink:', ...a);

const smtp = net.createServer((socket) => {
  state.sessions++;
  const id = state.sessions;
  let buffer = '';
  let inData = false;
  let data = [];
  let rcpts = [];
  let from = null;
  const reply = (line) => socket.write(line + '\r\n');
  socket.setEncoding('latin1');
  socket.setTimeout(60000, () => socket.destroy());
  socket.on('error', () => {});
  reply('220 sink.test ESMTP deferring test sink');

  socket.on('data', (chunk) => {
    buffer += chunk;
    let i;
    while ((i = buffer.indexOf('\r\n')) >= 0) {
      const line = buffer.slice(0, i);
      buffer = buffer.slice(i + 2);
      if (inData) {
        if (line === '.') {
          inData = false;
          state.messages++;
          log(`session ${id}: message ${state.messages} from <${from}> to ${rcpts.map((r) => `<${r}>`).join(',')} (${data.length} lines)`);
          reply(`250 2.0.0 Ok: queued as SINK${state.messages}`);
          data = []; rcpts = []; from = null;
        } else {
          data.push(line.startsWith('..') ? line.slice(1) : line);
        }
        continue;
      }
      command(line);
    }
  });

  function command(line) {
    const verb = line.slice(0, 4).toUpperCase();
    switch (verb) {
      case 'EHLO': reply('250-sink.test'); reply('250-8BITMIME'); reply('250 SIZE 10485760'); break;
      case 'HELO': reply('250 sink.test'); break;
      case 'MAIL': from = (/<([^>]*)>/.exec(line) || [])[1] ?? ''; rcpts = []; reply('250 2.1.0 Ok'); break;
      case 'RCPT': {
        const to = (/<([^>]*)>/.exec(line) || [])[1] ?? '';
        if (from === null) { reply('503 5.5.1 MAIL first'); break; }
        if (state.accepting) { rcpts.push(to); state.recipients++; reply('250 2.1.5 Ok'); }
        else { state.deferred++; log(`session ${id}: deferred <${to}>`); reply('451 4.3.0 try later'); }
        break;
      }
      case 'DATA':
        if (rcpts.length === 0) { reply('554 5.5.1 No valid recipients'); break; }
        inData = true; data = []; reply('354 End data with <CR><LF>.<CR><LF>'); break;
      case 'RSET': from = null; rcpts = []; reply('250 2.0.0 Ok'); break;
      case 'NOOP': reply('250 2.0.0 Ok'); break;
      case 'QUIT': reply('221 2.0.0 Bye'); socket.end(); break;
      default: reply('502 5.5.2 Command not implemented');
    }
  }
});

const control = http.createServer((req, res) => {
  const send = (code, body) => { res.writeHead(code, { 'Content-Type': 'application/json' }); res.end(JSON.stringify(body)); };
  if (req.method === 'GET' && req.url === '/state') return send(200, state);
  if (req.method === 'POST' && req.url === '/accept') { state.accepting = true; log('now accepting'); return send(200, state); }
  if (req.method === 'POST' && req.url === '/defer') { state.accepting = false; log('now deferring'); return send(200, state); }
  send(404, { error: 'not found' });
});

const listen = (server) => new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(0, '127.0.0.1', () => resolve(server.address().port));
});

const smtpPort = await listen(smtp);
const controlPort = await listen(control);
fs.writeFileSync(readyFile + '.tmp', JSON.stringify({ smtpPort, controlPort, pid: process.pid }));
fs.renameSync(readyFile + '.tmp', readyFile);
log(`SMTP on 127.0.0.1:${smtpPort}, control on 127.0.0.1:${controlPort}`);

for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => { smtp.close(); control.close(); process.exit(0); });
