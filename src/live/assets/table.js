// The overview table: one row per container, grouped under its pod (the pod's own row
// carries the pod's total), sortable by any column, filtered by the box above it, each
// number with a sparkline of the kept history. Only the rows in view exist in the DOM
// (a pool of rows reused as it scrolls), so a thousand containers cost what thirty do.

import * as f from './format.js';
import { latest } from './data.js';

const ROW_H = 34;
const BUFFER = 6;

function ns(r) {
  const i = r.identity || {};
  if (!i.namespace && !i.pod) return '';
  return (i.namespace || '') + '/' + (i.pod || '');
}

function name(r) {
  const i = r.identity || {};
  if (r.kind === 'pod') return i.pod || i.name || r.id;
  return i.name || f.shortId(r.id);
}

function ratio(v, limit) {
  return Number.isFinite(limit) && limit > 0 ? v / limit : NaN;
}

// The columns: text, or one of the API's series (`s`), optionally as a share of a limit.
export const COLUMNS = [
  { key: 'name', label: 'name', text: name },
  { key: 'image', label: 'image', text: r => (r.identity && r.identity.image) || '' },
  { key: 'runtime', label: 'runtime', text: r => (r.identity && r.identity.runtime) || '' },
  { key: 'pod', label: 'namespace/pod', text: ns },
  { key: 'state', label: 'state', text: r => (r.kind === 'pod' ? 'pod' : r.running ? 'running' : 'ended') },
  { key: 'cpu', label: 'CPU cores', s: 0, fmt: f.cores, color: '#2563eb' },
  { key: 'cpu_limit', label: 'CPU % limit', s: 0, limit: 0, fmt: f.share, color: '#1d4ed8' },
  { key: 'memory', label: 'memory', s: 1, fmt: f.bytes, color: '#9333ea' },
  { key: 'memory_limit', label: 'mem % limit', s: 1, limit: 1, fmt: f.share, color: '#7e22ce' },
  { key: 'net_rx', label: 'net rx', s: 2, fmt: f.rate, color: '#059669' },
  { key: 'net_tx', label: 'net tx', s: 3, fmt: f.rate, color: '#047857' },
  { key: 'block_read', label: 'block read', s: 4, fmt: f.rate, color: '#d97706' },
  { key: 'block_write', label: 'block write', s: 5, fmt: f.rate, color: '#b45309' },
  { key: 'disk', label: 'disk', s: 6, fmt: f.bytes, color: '#64748b' },
  { key: 'pids', label: 'pids', s: 7, fmt: f.count, color: '#0f766e' },
  { key: 'cpu_pressure', label: 'CPU pressure', s: 8, fmt: f.share, color: '#dc2626' },
  { key: 'memory_pressure', label: 'mem pressure', s: 9, fmt: f.share, color: '#be123c' },
];

function value(col, r, ticks) {
  const v = latest(r.rings[col.s], ticks);
  return col.limit === undefined ? v : ratio(v, r.limits[col.limit]);
}

function sortKey(col, r, ticks) {
  return col.text ? col.text(r).toLowerCase() : value(col, r, ticks);
}

function compare(a, b, dir) {
  // Missing values go last, whichever the direction.
  const na = a === '' || Number.isNaN(a);
  const nb = b === '' || Number.isNaN(b);
  if (na || nb) return na === nb ? 0 : na ? 1 : -1;
  return (a < b ? -1 : a > b ? 1 : 0) * dir;
}

function matches(r, needle) {
  if (!needle) return true;
  const i = r.identity || {};
  return [name(r), i.image, i.runtime, ns(r), r.id].some(t => t && t.toLowerCase().includes(needle));
}

// Draws `values` (oldest first) into a small canvas; returns how many points it has.
export function sparkline(canvas, values, color) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 64;
  const h = canvas.clientHeight || 12;
  if (canvas.width !== Math.round(w * dpr)) canvas.width = Math.round(w * dpr);
  if (canvas.height !== Math.round(h * dpr)) canvas.height = Math.round(h * dpr);
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  let max = 0;
  let min = 0;
  let n = 0;
  for (const v of values) {
    if (v === null || Number.isNaN(v)) continue;
    n++;
    if (v > max) max = v;
    if (v < min) min = v;
  }
  if (n === 0) return 0;
  const span = max - min || 1;
  const step = values.length > 1 ? w / (values.length - 1) : w;
  ctx.strokeStyle = color;
  ctx.lineWidth = 1.2;
  ctx.beginPath();
  let pen = false;
  values.forEach((v, i) => {
    if (v === null || Number.isNaN(v)) {
      pen = false;
      return;
    }
    const x = values.length > 1 ? i * step : w - 1;
    const y = h - 1 - ((v - min) / span) * (h - 2);
    if (pen) ctx.lineTo(x, y);
    else ctx.moveTo(x, y);
    pen = true;
  });
  if (n === 1) ctx.lineTo(w, h - 1 - ((max - min) / span) * (h - 2));
  ctx.stroke();
  return n;
}

export class Table {
  constructor(root, onOpen) {
    this.root = root;
    this.onOpen = onOpen;
    this.sort = { key: 'cpu', dir: -1 };
    this.filter = '';
    this.order = [];
    this.pool = [];
    this.wrap = f.el('div', 'table-wrap');
    this.wrap.id = 'table-wrap';
    this.table = f.el('table', 'containers');
    this.table.id = 'containers';
    const head = f.el('thead');
    const tr = f.el('tr');
    for (const c of COLUMNS) {
      const th = f.el('th', c.s === undefined ? 'text' : 'num', c.label);
      th.dataset.key = c.key;
      th.addEventListener('click', () => this.sortBy(c.key));
      tr.append(th);
    }
    head.append(tr);
    this.body = f.el('tbody');
    this.top = f.el('tr', 'spacer');
    this.bottom = f.el('tr', 'spacer');
    this.body.append(this.top, this.bottom);
    this.table.append(head, this.body);
    this.wrap.append(this.table);
    root.append(this.wrap);
    this.wrap.addEventListener('scroll', () => this.schedule(), { passive: true });
    window.addEventListener('resize', () => this.schedule());
    this.markSort();
  }

  sortBy(key) {
    if (this.sort.key === key) this.sort.dir = -this.sort.dir;
    else this.sort = { key, dir: COLUMNS.find(c => c.key === key).s === undefined ? 1 : -1 };
    this.markSort();
    this.update(this.data);
  }

  setFilter(text) {
    this.filter = text.trim().toLowerCase();
    this.update(this.data);
  }

  markSort() {
    for (const th of this.table.tHead.rows[0].cells) {
      const on = th.dataset.key === this.sort.key;
      th.classList.toggle('sorted', on);
      th.setAttribute('aria-sort', on ? (this.sort.dir > 0 ? 'ascending' : 'descending') : 'none');
    }
  }

  // The rows in display order: pods' groups and lone containers sorted together, each pod's
  // containers after it, sorted the same way.
  arrange(data) {
    const col = COLUMNS.find(c => c.key === this.sort.key);
    const ticks = data.ticks;
    const key = new Map();
    for (const r of data.rows.values()) key.set(r, sortKey(col, r, ticks));
    const byKey = (a, b) => compare(key.get(a), key.get(b), this.sort.dir) || (a.id < b.id ? -1 : 1);
    const pods = new Map();
    const children = new Map();
    const top = [];
    for (const r of data.rows.values()) if (r.kind === 'pod') pods.set(r.id, r);
    for (const r of data.rows.values()) {
      const uid = r.identity && r.identity.pod_uid;
      if (r.kind !== 'pod' && uid && pods.has(uid)) {
        if (!children.has(uid)) children.set(uid, []);
        children.get(uid).push(r);
      } else {
        top.push(r);
      }
    }
    top.sort(byKey);
    const out = [];
    for (const r of top) {
      if (r.kind !== 'pod') {
        if (matches(r, this.filter)) out.push({ r, depth: 0 });
        continue;
      }
      const kids = (children.get(r.id) || []).sort(byKey);
      const podMatches = matches(r, this.filter);
      const shown = podMatches ? kids : kids.filter(k => matches(k, this.filter));
      if (podMatches || shown.length) {
        out.push({ r, depth: 0, group: true });
        for (const k of shown) out.push({ r: k, depth: 1 });
      }
    }
    return out;
  }

  update(data) {
    if (!data) return;
    this.data = data;
    this.order = this.arrange(data);
    this.render();
  }

  schedule() {
    if (this.pending) return;
    this.pending = requestAnimationFrame(() => {
      this.pending = 0;
      this.render();
    });
  }

  makeRow() {
    const tr = f.el('tr', 'row');
    tr.cells_ = COLUMNS.map(c => {
      const td = f.el('td', c.s === undefined ? 'text' : 'num');
      td.dataset.key = c.key;
      if (c.key === 'name') {
        const a = f.el('a', 'open');
        a.addEventListener('click', e => {
          e.preventDefault();
          this.onOpen(tr.dataset.id);
        });
        td.append(a);
        td.text_ = a;
      } else if (c.s === undefined) {
        td.text_ = td;
      } else {
        const v = f.el('div', 'v');
        const canvas = f.el('canvas', 'spark');
        td.append(v, canvas);
        td.text_ = v;
        td.canvas_ = canvas;
      }
      tr.append(td);
      return td;
    });
    return tr;
  }

  render() {
    const data = this.data;
    if (!data) return;
    const total = this.order.length;
    const view = this.wrap.clientHeight || 600;
    const first = Math.max(0, Math.floor(this.wrap.scrollTop / ROW_H) - BUFFER);
    const count = Math.min(total - first, Math.ceil(view / ROW_H) + 2 * BUFFER);
    while (this.pool.length < count) this.pool.push(this.makeRow());
    const kept = data.ticks.kept();
    for (let i = 0; i < this.pool.length; i++) {
      const tr = this.pool[i];
      if (i >= count) {
        if (tr.parentNode) tr.remove();
        continue;
      }
      this.fill(tr, this.order[first + i], data, kept);
    }
    // The pool's rows in order between the spacers.
    for (let i = 0; i < count; i++) this.body.insertBefore(this.pool[i], this.bottom);
    this.top.style.height = first * ROW_H + 'px';
    this.bottom.style.height = Math.max(0, total - first - count) * ROW_H + 'px';
    this.root.dataset.rows = String(total);
  }

  fill(tr, item, data, kept) {
    const r = item.r;
    tr.dataset.id = r.id;
    tr.className = 'row' + (item.depth ? ' child' : '') + (item.group ? ' pod' : '') + (r.running ? '' : ' gone');
    COLUMNS.forEach((c, i) => {
      const td = tr.cells_[i];
      if (c.text) {
        const t = c.text(r);
        if (td.text_.textContent !== t) td.text_.textContent = t;
        if (c.key === 'name') {
          td.text_.href = '#/c/' + encodeURIComponent(r.id);
          td.title = r.id;
        }
        return;
      }
      const v = value(c, r, data.ticks);
      td.text_.textContent = c.fmt(v);
      const ring = r.rings[c.s];
      let values = kept.map(([, slot]) => (ring ? ring[slot] : NaN));
      if (c.limit !== undefined) values = values.map(x => ratio(x, r.limits[c.limit]));
      td.canvas_.dataset.points = String(sparkline(td.canvas_, values, c.color));
    });
  }
}
