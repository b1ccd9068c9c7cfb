// The page's copy of the overview: the API's rings rebuilt in the browser (slot = tick %
// capacity), merged from incremental answers (`since`), and the fetch schedule that asks
// once just after each tick.

export const API = '/api/v1';

export class ApiError extends Error {
  constructor(status, text) {
    super(text);
    this.status = status;
  }
}

export async function getJson(path) {
  const r = await fetch(API + path, { headers: { Accept: 'application/json' }, cache: 'no-store' });
  if (!r.ok) {
    let text = r.status + ' ' + r.statusText;
    try {
      const body = await r.json();
      if (body && body.error) text = body.error;
    } catch (_) { /* not JSON */ }
    throw new ApiError(r.status, text);
  }
  return r.json();
}

// Ticks, shared by every row: which tick each slot holds, and its time.
export class Ticks {
  constructor() {
    this.reset(1, null);
  }

  reset(capacity, epoch) {
    this.capacity = capacity;
    this.epoch = epoch;
    this.seq = 0;
    this.slotSeq = new Float64Array(capacity).fill(-1);
    this.times = new Float64Array(capacity).fill(NaN);
  }

  // Takes the answer's ticks (the caller moves `seq` once every page of a round is in);
  // false when they belong to another exporter (start again).
  take(a) {
    if (a.epoch !== this.epoch || a.capacity !== this.capacity) return false;
    a.times.forEach((t, i) => {
      const seq = a.from + i;
      const slot = seq % this.capacity;
      this.slotSeq[slot] = seq;
      this.times[slot] = t;
    });
    return true;
  }

  // The kept ticks, oldest first: [seq, slot] pairs.
  kept() {
    const out = [];
    const first = Math.max(1, this.seq - this.capacity + 1);
    for (let seq = first; seq <= this.seq; seq++) {
      const slot = seq % this.capacity;
      if (this.slotSeq[slot] === seq) out.push([seq, slot]);
    }
    return out;
  }

  // Tick times in seconds, for the charts' x axis.
  xs() {
    return this.kept().map(([, slot]) => this.times[slot] / 1000);
  }
}

// Writes an answer's points (`from` on) into per-series rings.
export function takePoints(rings, capacity, from, points) {
  points.forEach((values, s) => {
    let ring = rings[s];
    if (!ring) ring = rings[s] = new Float32Array(capacity).fill(NaN);
    values.forEach((v, i) => {
      ring[(from + i) % capacity] = v === null ? NaN : v;
    });
  });
}

// A series over the kept ticks, oldest first (null where none, as the charts want it).
export function seriesOf(ring, kept) {
  return kept.map(([, slot]) => {
    const v = ring ? ring[slot] : NaN;
    return Number.isNaN(v) ? null : v;
  });
}

// The latest value of a series (NaN when the newest tick has none).
export function latest(ring, ticks) {
  if (!ring || ticks.seq === 0) return NaN;
  return ring[ticks.seq % ticks.capacity];
}

export class Overview {
  constructor() {
    this.ticks = new Ticks();
    this.rows = new Map();
    this.ended = [];
    this.series = [];
    this.interval = 10;
    this.history = 900;
  }

  // Fetches what is new since the last answer, every page of rows; returns whether a tick
  // was added.
  async refresh() {
    const before = this.ticks.seq;
    const since = before > 0 ? '&since=' + before : '';
    let offset = 0;
    let limit = null;
    const seen = new Set();
    let total = 0;
    // A tick may come between two pages: the round is as new as its oldest page.
    let seq = Infinity;
    for (;;) {
      const q = '?offset=' + offset + (limit ? '&limit=' + limit : '') + since;
      let a;
      try {
        a = await getJson('/overview' + q);
      } catch (e) {
        if (e.status === 400 && since) {
          this.ticks.reset(1, null);
          return this.refresh();
        }
        throw e;
      }
      if (!this.ticks.take(a)) {
        // Another exporter (restarted) or another history: start afresh.
        this.ticks.reset(a.capacity, a.epoch);
        this.rows.clear();
        if (since) return this.refresh();
        this.ticks.take(a);
      }
      this.interval = a.interval_s;
      this.history = a.history_s;
      this.series = a.series;
      this.ended = a.ended;
      this.revision = a.revision;
      for (const r of a.rows) {
        seen.add(r.id);
        let row = this.rows.get(r.id);
        if (!row) {
          row = { id: r.id, rings: [], identity: null };
          this.rows.set(r.id, row);
        }
        row.kind = r.kind;
        row.running = r.running;
        row.limits = r.limits.map(v => (v === null ? NaN : v));
        if (r.identity) row.identity = r.identity;
        takePoints(row.rings, a.capacity, a.from, r.points);
      }
      seq = Math.min(seq, a.seq);
      total = a.total;
      limit = a.limit;
      offset += a.limit;
      if (offset >= a.total) break;
    }
    this.ticks.seq = seq;
    if (seen.size >= total) {
      for (const id of this.rows.keys()) if (!seen.has(id)) this.rows.delete(id);
    }
    return this.ticks.seq > before;
  }
}

// Asks once just after each tick: the next one is due an interval after the last, on the
// exporter's clock, which is this one's plus the smallest offset seen.
export class Schedule {
  constructor() {
    this.offset = Infinity;
  }

  saw(tickMs) {
    if (Number.isFinite(tickMs)) this.offset = Math.min(this.offset, Date.now() - tickMs);
  }

  delay(lastTickMs, interval, gotNew) {
    const period = Math.max(0.25, interval) * 1000;
    if (!gotNew || !Number.isFinite(this.offset) || !Number.isFinite(lastTickMs)) {
      return Math.min(1000, period / 4);
    }
    const due = lastTickMs + period + this.offset + 300;
    return Math.min(period + 1000, Math.max(250, due - Date.now()));
  }
}
