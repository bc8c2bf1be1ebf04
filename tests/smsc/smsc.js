// A test SMSC: a thin harness around the npm `smpp` package (the protocol side is that
// library's, not ours). It accepts binds, answers submit_sm with message ids, records what it
// received, and takes orders on a loopback HTTP control port:
//
//   GET  /state                 {sessions, submits: [...], enquire_links, binds}
//   POST /throttle  {count, status}   answer the next `count` submits with `status` (0x58, 0x14)
//   POST /delay     {ms}              answer submits after `ms` (0: at once)
//   POST /mute      {count}           accept and record the next `count` submits, never answer
//   POST /receipt   {message_id, stat, err, text, tlvs, esm_class}   send a delivery receipt
//   POST /deliver   {source, dest, hex, data_coding, esm_class}       send an MO deliver_sm
//   POST /drop                         close every session (a network cut)
//
// Usage: node smsc.js --port 0 --control-port 0 [--record FILE] [--system-id ID --password PW]
// Prints one line `READY <smpp port> <control port>` once both listen. With --record, each
// submit is appended (JSON line) to FILE before it is answered, so a record survives a kill.
'use strict';

const fs = require('fs');
const http = require('http');
const smpp = require('smpp');

function arg(name, fallback) {
  const i = process.argv.indexOf('--' + name);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

const systemId = arg('system-id', 'wanglai');
const password = arg('password', 'secret');
const recordFile = arg('record', '');
const prefix = Date.now().toString(36) + process.pid.toString(36);

let counter = 0;
let throttleLeft = 0;
let throttleStatus = 0x58;
let delayMs = 0;
let muteLeft = 0;
let enquireLinks = 0;
let binds = 0;
let throttled = 0;
const submits = [];
const sessions = new Set();

function record(entry) {
  submits.push(entry);
  if (recordFile) {
    fs.appendFileSync(recordFile, JSON.stringify(entry) + '\n');
  }
}

function describe(pdu) {
  const sm = pdu.short_message || {};
  const udh = (sm.udh || []).map((b) => Buffer.from(b).toString('hex')).join('');
  return {
    source: pdu.source_addr,
    dest: pdu.destination_addr,
    data_coding: pdu.data_coding,
    esm_class: pdu.esm_class,
    registered_delivery: pdu.registered_delivery,
    udh: udh,
    text: typeof sm.message === 'string' ? sm.message : Buffer.from(sm.message || []).toString('hex'),
  };
}

const server = smpp.createServer({ debug: false }, (session) => {
  session.on('bind_transceiver', (pdu) => {
    if (pdu.system_id !== systemId || pdu.password !== password) {
      session.send(pdu.response({ command_status: smpp.ESME_RBINDFAIL }));
      session.close();
      return;
    }
    binds += 1;
    sessions.add(session);
    session.send(pdu.response({ system_id: 'TESTSMSC' }));
  });
  session.on('enquire_link', (pdu) => {
    enquireLinks += 1;
    session.send(pdu.response());
  });
  session.on('unbind', (pdu) => {
    session.send(pdu.response());
    sessions.delete(session);
    session.close();
  });
  session.on('submit_sm', (pdu) => {
    const answer = () => {
      if (throttleLeft > 0) {
        throttleLeft -= 1;
        throttled += 1;
        session.send(pdu.response({ command_status: throttleStatus }));
        return;
      }
      counter += 1;
      const messageId = prefix + '-' + counter;
      const t = Number(process.hrtime.bigint() / 1000n); // microseconds, for rates
      record(Object.assign({ message_id: messageId, t: t }, describe(pdu)));
      if (muteLeft > 0) {
        muteLeft -= 1; // accepted and recorded, but the answer is never sent
        return;
      }
      session.send(pdu.response({ message_id: messageId }));
    };
    if (delayMs > 0) setTimeout(answer, delayMs);
    else answer();
  });
  session.on('deliver_sm_resp', () => {});
  session.on('close', () => sessions.delete(session));
  session.on('error', () => sessions.delete(session));
});

function sendAll(fields) {
  for (const session of sessions) {
    session.deliver_sm(fields);
  }
  return sessions.size;
}

function pad(n) {
  return String(n).padStart(2, '0');
}

function smppDate() {
  const d = new Date();
  return pad(d.getUTCFullYear() % 100) + pad(d.getUTCMonth() + 1) + pad(d.getUTCDate()) +
    pad(d.getUTCHours()) + pad(d.getUTCMinutes());
}

const STATES = { DELIVRD: 2, EXPIRED: 3, DELETED: 4, UNDELIV: 5, ACCEPTD: 6, UNKNOWN: 7, REJECTD: 8 };

function receipt(body) {
  const stat = body.stat || 'DELIVRD';
  const id = body.message_id || '';
  const text = body.text !== undefined ? body.text :
    'id:' + id + ' sub:001 dlvrd:' + (stat === 'DELIVRD' ? '001' : '000') +
    ' submit date:' + smppDate() + ' done date:' + smppDate() + ' stat:' + stat +
    ' err:' + (body.err || '000') + ' text:';
  const fields = {
    source_addr: body.source || '',
    destination_addr: body.dest || '',
    esm_class: body.esm_class !== undefined ? body.esm_class : 0x04,
    short_message: Buffer.from(text, 'latin1'),
  };
  if (body.tlvs) {
    fields.receipted_message_id = id;
    fields.message_state = STATES[stat] || 7;
  }
  return sendAll(fields);
}

function deliver(body) {
  return sendAll({
    source_addr: body.source,
    destination_addr: body.dest || '',
    esm_class: body.esm_class || 0,
    data_coding: body.data_coding || 0,
    short_message: Buffer.from(body.hex || '', 'hex'),
  });
}

const control = http.createServer((req, res) => {
  let raw = '';
  req.on('data', (chunk) => { raw += chunk; });
  req.on('end', () => {
    const body = raw ? JSON.parse(raw) : {};
    let out = { ok: true };
    if (req.method === 'GET' && req.url === '/state') {
      out = { sessions: sessions.size, submits: submits, throttled: throttled,
        enquire_links: enquireLinks, binds: binds };
    } else if (req.url === '/throttle') {
      throttleLeft = body.count || 0;
      throttleStatus = body.status || 0x58;
    } else if (req.url === '/mute') {
      muteLeft = body.count || 0;
    } else if (req.url === '/delay') {
      delayMs = body.ms || 0;
    } else if (req.url === '/receipt') {
      out.sent = receipt(body);
    } else if (req.url === '/deliver') {
      out.sent = deliver(body);
    } else if (req.url === '/drop') {
      for (const session of sessions) session.close();
      sessions.clear();
    } else {
      res.writeHead(404);
      res.end('{}');
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(out));
  });
});

server.listen(Number(arg('port', '0')), '127.0.0.1', () => {
  control.listen(Number(arg('control-port', '0')), '127.0.0.1', () => {
    process.stdout.write('READY ' + server.address().port + ' ' + control.address().port + '\n');
  });
});

process.on('SIGTERM', () => process.exit(0));
