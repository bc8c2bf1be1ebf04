// Pure objects ported from the Python SDK: the event cursor (client/ordering.py), the adaptive
// heartbeat (client/heartbeat.py) and the reconnect backoff (client/backoff.py).

export const DELIVER = "deliver";
export const DUPLICATE = "duplicate";
export const GAP = "gap";

/** The seq of the last event handed over; events are handed over in seq order, once. */
export class Cursor {
  constructor(seq = 0) {
    if (!(seq >= 0)) throw new Error("a cursor is 0 or a seq the server gave you");
    this.seq = seq;
  }

  /** A live event's verdict; DELIVER moves the cursor to it. */
  offer(seq) {
    if (seq <= this.seq) return DUPLICATE;
    if (seq === this.seq + 1) {
      this.seq = seq;
      return DELIVER;
    }
    return GAP;
  }

  /** An event sync returned (sync has no gaps); false if already seen. */
  advance(seq) {
    if (seq <= this.seq) return false;
    this.seq = seq;
    return true;
  }
}

const REFINE = 0.1;

/** Ping as rarely as the path allows: grow while pings are answered, back off where one died. */
export class AdaptiveHeartbeat {
  constructor(low, high, growth = 1.5, confirm = 1) {
    this.low = Math.max(1, low);
    this.high = Math.max(this.low, high);
    this.growth = growth;
    this.confirm = confirm;
    this.interval = this.low;
    this.good = this.low;
    this.ceiling = 0;
    this.answeredCount = 0;
  }

  bounds(low, high) {
    this.low = Math.max(1, low);
    this.high = Math.max(this.low, high);
    this.interval = Math.min(Math.max(this.interval, this.low), this.high);
    this.good = Math.min(Math.max(this.good, this.low), this.interval);
  }

  answered() {
    this.good = Math.max(this.good, this.interval);
    this.answeredCount += 1;
    if (this.answeredCount < this.confirm) return;
    this.answeredCount = 0;
    let longer = Math.min(this.high, this.interval * this.growth);
    if (this.ceiling && longer >= this.ceiling) {
      const gap = this.ceiling - this.interval;
      longer = gap > this.interval * REFINE ? this.interval + gap / 2 : this.interval;
    }
    this.interval = longer;
  }

  lost() {
    if (this.interval > this.good) {
      this.ceiling = this.ceiling ? Math.min(this.ceiling, this.interval) : this.interval;
      this.interval = this.good;
    } else {
      this.interval = Math.max(this.low, this.interval / this.growth);
      this.good = Math.min(this.good, this.interval);
    }
    this.answeredCount = 0;
  }
}

/** Reconnect delay in seconds: exponential from low to high, scaled by a factor in [0.5, 1]. */
export function backoff(attempt, low = 0.2, high = 10) {
  const base = Math.min(high, low * 2 ** Math.min(attempt, 30));
  return base * (0.5 + 0.5 * Math.random());
}
