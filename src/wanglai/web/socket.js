// The live connection: WebSocket /v1/ws, hello, catch-up with /v1/sync from the saved cursor,
// in-order delivery of events (no gap, no duplicate), adaptive pings and jittered reconnects.

import { AdaptiveHeartbeat, Cursor, DELIVER, GAP, backoff } from "./sync.js";

const PONG_TIMEOUT_MS = 10_000;

export class Live {
  /**
   * @param api the Api (for /v1/sync)
   * @param cursor the saved cursor (seq of the last applied event)
   * @param handlers {onEvent(event), onFrame(frame), onState(state), onCursor(seq), onRevoked()}
   */
  constructor(api, cursor, handlers) {
    this.api = api;
    this.cursor = new Cursor(cursor);
    this.h = handlers;
    this.ws = null;
    this.state = "offline";
    this.attempt = 0;
    this.stopped = false;
    this.syncing = false;
    this.queue = [];
    this.heartbeat = new AdaptiveHeartbeat(60, 600);
    this.pingTimer = null;
    this.pongTimer = null;
    this.retryTimer = null;
    this.waiting = new Map(); // client_id -> {resolve, reject}
    this.onOnline = () => this.reconnectNow();
    window.addEventListener("online", this.onOnline);
  }

  setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.h.onState?.(state);
  }

  start() {
    this.stopped = false;
    this.open();
  }

  stop() {
    this.stopped = true;
    window.removeEventListener("online", this.onOnline);
    clearTimeout(this.retryTimer);
    this.clearPing();
    if (this.ws) this.ws.close(1000);
    this.ws = null;
    this.setState("offline");
  }

  reconnectNow() {
    if (this.stopped || this.state === "online" || this.state === "connecting") return;
    clearTimeout(this.retryTimer);
    this.open();
  }

  open() {
    if (this.stopped) return;
    this.setState("connecting");
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const url = `${scheme}//${location.host}/v1/ws?token=${encodeURIComponent(this.api.token)}`;
    const ws = new WebSocket(url);
    this.ws = ws;
    let helloSeen = false;
    ws.onmessage = (msg) => {
      let frame;
      try {
        frame = JSON.parse(msg.data);
      } catch {
        return;
      }
      if (frame.t === "hello") {
        helloSeen = true;
        this.onHello(frame);
      } else {
        this.onFrame(frame);
      }
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      const pinging = this.pingSentAt !== null && this.pingSentAt !== undefined;
      this.clearPing();
      for (const { reject } of this.waiting.values()) reject(new Error("disconnected"));
      this.waiting.clear();
      if (ev.code === 4003) {
        this.stopped = true;
        this.setState("offline");
        this.h.onRevoked?.();
        return;
      }
      if (helloSeen && (pinging || ev.code === 4000 || ev.code === 1006)) this.heartbeat.lost();
      this.setState("offline");
      this.scheduleReconnect();
    };
  }

  scheduleReconnect() {
    if (this.stopped) return;
    const delay = backoff(this.attempt++) * 1000;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.open(), delay);
  }

  async onHello(hello) {
    this.attempt = 0;
    this.heartbeat.bounds(hello.heartbeat || 60, hello.heartbeat_max || 600);
    this.schedulePing();
    if (hello.head > this.cursor.seq) await this.resync();
    if (this.ws) this.setState("online");
  }

  /** Catch up from the cursor with /v1/sync until nothing is left, then drain live events. */
  async resync() {
    if (this.syncing) return;
    this.syncing = true;
    try {
      for (;;) {
        const page = await this.api.get("/v1/sync", { since: this.cursor.seq, limit: 1000 });
        for (const event of page.events) {
          if (this.cursor.advance(event.seq)) this.deliver(event);
        }
        if (!page.more) break;
      }
    } catch (err) {
      this.syncing = false;
      if (this.ws) this.ws.close(4500); // reconnect, which resyncs
      return;
    }
    this.syncing = false;
    const queued = this.queue;
    this.queue = [];
    for (const event of queued) this.offer(event);
    this.sendFrame({ t: "cursor", seq: this.cursor.seq });
  }

  offer(event) {
    if (this.syncing) {
      this.queue.push(event);
      return;
    }
    const verdict = this.cursor.offer(event.seq);
    if (verdict === DELIVER) this.deliver(event);
    else if (verdict === GAP) {
      this.queue.push(event);
      this.resync();
    }
  }

  deliver(event) {
    this.h.onCursor?.(this.cursor.seq);
    try {
      this.h.onEvent(event);
    } catch (err) {
      console.error("event handler failed", event, err);
    }
  }

  onFrame(frame) {
    if (frame.t === "pong") {
      if (this.pingSentAt != null) {
        this.heartbeat.answered();
        this.pingSentAt = null;
        clearTimeout(this.pongTimer);
        this.schedulePing();
      }
      return;
    }
    if (frame.t === "event") {
      if (frame.ack) this.settle(frame.ack, null, frame.message);
      this.offer(frame);
      return;
    }
    if (frame.t === "ack") {
      this.settle(frame.id, null, frame);
      return;
    }
    if (frame.t === "error" && frame.id && this.waiting.has(frame.id)) {
      this.settle(frame.id, frame, null);
      return;
    }
    if (frame.t === "claimed" || frame.t === "transferred") {
      this.settle(frame.id, null, frame.result);
      return;
    }
    this.h.onFrame?.(frame);
  }

  settle(id, error, value) {
    const waiter = this.waiting.get(id);
    if (!waiter) return;
    this.waiting.delete(id);
    if (error) waiter.reject(error);
    else waiter.resolve(value);
  }

  get connected() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN && this.state === "online";
  }

  sendFrame(frame) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(frame));
    if (frame.t !== "ping") this.schedulePing(); // any frame counts as a heartbeat
    return true;
  }

  /** Send a frame that is answered by its id (send → ack, claim → claimed); rejects with the error frame. */
  request(frame) {
    return new Promise((resolve, reject) => {
      this.waiting.set(frame.id, { resolve, reject });
      if (!this.sendFrame(frame)) {
        this.waiting.delete(frame.id);
        reject(new Error("disconnected"));
      }
    });
  }

  schedulePing() {
    if (this.pingSentAt != null) return; // a ping is out; its answer reschedules
    clearTimeout(this.pingTimer);
    this.pingTimer = setTimeout(() => this.ping(), this.heartbeat.interval * 1000);
  }

  ping() {
    if (!this.sendFrame({ t: "ping" })) return;
    this.pingSentAt = Date.now();
    this.pongTimer = setTimeout(() => {
      if (this.ws) this.ws.close(4501); // unanswered: treat the connection as dead
    }, PONG_TIMEOUT_MS);
  }

  clearPing() {
    clearTimeout(this.pingTimer);
    clearTimeout(this.pongTimer);
    this.pingSentAt = null;
  }
}
