// A container's own view: who it is (its identity and allowed labels, as text), how it
// ended if it did, and a chart of every metric it has over the kept history, with its
// limits drawn as lines.

import * as f from './format.js';
import { Chart, PALETTE, limitLine } from './charts.js';
import { Ticks, getJson, seriesOf, takePoints } from './data.js';

// The overview's series, grouped into charts, with the limit each is drawn against.
const GROUPS = [
  { key: 'cpu', title: 'CPU (cores)', unit: '{cpu}', series: ['cpu'], limit: 'cpu', extra: ['container.cpu.time', 'k8s.pod.cpu.time'] },
  { key: 'memory', title: 'Memory', unit: 'By', series: ['memory'], limit: 'memory', extra: ['container.memory.usage', 'container.memory.rss', 'container.memory.file', 'k8s.pod.memory.usage', 'k8s.pod.memory.rss', 'k8s.pod.memory.file'] },
  { key: 'network', title: 'Network', unit: 'By/s', series: ['net_rx', 'net_tx'] },
  { key: 'block', title: 'Block IO', unit: 'By/s', series: ['block_read', 'block_write'] },
  { key: 'disk', title: 'Disk (layer + logs)', unit: 'By', series: ['disk'] },
  { key: 'pids', title: 'Tasks', unit: '{task}', series: ['pids'], limit: 'pids' },
  { key: 'pressure', title: 'Pressure (share of time stalled, some)', unit: '1', series: ['cpu_pressure', 'memory_pressure'] },
];

const LABELS = {
  cpu: 'cores', memory: 'working set', net_rx: 'receive', net_tx: 'transmit', block_read: 'read',
  block_write: 'write', disk: 'layer + logs', pids: 'tasks', cpu_pressure: 'CPU', memory_pressure: 'memory',
};

function attrText(attrs) {
  const v = Object.values(attrs || {});
  return v.length ? v.join(' ') : '';
}

export class ContainerView {
  constructor(root, back) {
    this.root = root;
    this.back = back;
    this.id = null;
  }

  open(id) {
    this.id = id;
    this.ticks = new Ticks();
    this.rings = new Map();
    this.detail = new Map();
    this.charts = new Map();
    this.answer = null;
    this.root.replaceChildren();
    const nav = f.el('div', 'crumbs');
    const a = f.el('a', 'back', '← all containers');
    a.href = '#/';
    nav.append(a);
    this.title = f.el('h2', 'title', f.shortId(id));
    this.sub = f.el('div', 'sub');
    this.info = f.el('div', 'info');
    this.identity = f.el('table', 'kv');
    this.identity.id = 'identity';
    this.ends = f.el('div', 'ends');
    this.ends.id = 'ends';
    const idBox = f.el('section', 'card');
    idBox.append(f.el('h3', null, 'Identity and labels'), this.identity);
    this.info.append(idBox, this.ends);
    this.grid = f.el('div', 'grid');
    this.grid.id = 'charts';
    this.root.append(nav, this.title, this.sub, this.info, this.grid);
  }

  // Fetches what is new; returns the answer's newest tick time (ms).
  async refresh() {
    const id = this.id;
    const since = this.ticks.seq > 0 ? '?since=' + this.ticks.seq : '';
    let a;
    try {
      a = await getJson('/containers/' + encodeURIComponent(id) + since);
    } catch (e) {
      if (e.status === 400 && since) {
        this.ticks.reset(1, null);
        return this.refresh();
      }
      throw e;
    }
    if (id !== this.id) return NaN;
    if (!this.ticks.take(a)) {
      this.ticks.reset(a.capacity, a.epoch);
      this.rings.clear();
      this.detail.clear();
      if (since) return this.refresh();
      this.ticks.take(a);
    }
    this.ticks.seq = a.seq;
    for (const s of a.series) {
      if (!this.rings.has(s.key)) this.rings.set(s.key, []);
      takePoints(this.rings.get(s.key), a.capacity, a.from, [s.points]);
    }
    for (const d of a.detail) {
      // CPU time per second is CPUs in use.
      if (d.metric.endsWith('.cpu.time')) d.unit = '{cpu}';
      const key = d.metric + '\u0000' + attrText(d.attributes);
      if (!this.detail.has(key)) this.detail.set(key, { d, rings: [] });
      takePoints(this.detail.get(key).rings, a.capacity, a.from, [d.points]);
    }
    this.answer = a;
    this.render();
    return a.times.length ? a.times[a.times.length - 1] : NaN;
  }

  render() {
    const a = this.answer;
    const i = a.identity;
    const name = (a.kind === 'pod' ? i.pod : i.name) || f.shortId(a.id);
    this.title.textContent = name;
    this.sub.textContent = [a.kind, i.image, i.runtime, a.running ? 'running' : 'ended', 'since ' + f.when(i.created)]
      .filter(Boolean).join(' · ');
    this.renderIdentity(a);
    this.renderEnds(a.ended);
    const kept = this.ticks.kept();
    const xs = kept.map(([, slot]) => this.ticks.times[slot] / 1000);
    const used = new Set();
    for (const g of GROUPS) {
      const lines = g.series.map((k, n) => ({
        label: LABELS[k],
        values: seriesOf(this.rings.get(k) && this.rings.get(k)[0], kept),
        color: PALETTE[n],
      }));
      for (const [key, { d, rings }] of this.detail) {
        if (!(g.extra || []).includes(d.metric)) continue;
        used.add(key);
        lines.push({
          label: d.metric.split('.').pop() + (attrText(d.attributes) ? ' ' + attrText(d.attributes) : ''),
          values: seriesOf(rings[0], kept),
          color: PALETTE[lines.length % PALETTE.length],
        });
      }
      if (g.limit) {
        const l = a.limits[g.limit];
        const line = limitLine('limit', l && l.changes, kept);
        if (line) lines.push(line);
      }
      this.chart(g.key, g.title, g.unit).set(xs, lines);
    }
    // Every other metric it has, one chart each, a line per attribute value.
    const byMetric = new Map();
    for (const [key, { d, rings }] of this.detail) {
      if (used.has(key)) continue;
      if (!byMetric.has(d.metric)) byMetric.set(d.metric, { unit: d.unit, lines: [] });
      const m = byMetric.get(d.metric);
      m.lines.push({
        label: attrText(d.attributes) || d.metric.split('.').pop(),
        values: seriesOf(rings[0], kept),
        color: PALETTE[m.lines.length % PALETTE.length],
      });
    }
    for (const [metric, m] of byMetric) this.chart('m:' + metric, metric, m.unit).set(xs, m.lines);
    this.root.dataset.seq = String(a.seq);
  }

  chart(key, title, unit) {
    let c = this.charts.get(key);
    if (!c) {
      const box = f.el('div');
      box.dataset.key = key;
      this.grid.append(box);
      c = new Chart(box, title, unit, 170);
      this.charts.set(key, c);
    }
    return c;
  }

  renderIdentity(a) {
    const rows = [['id', a.id], ...a.attributes];
    const body = f.el('tbody');
    for (const [k, v] of rows) {
      const tr = f.el('tr');
      tr.append(f.el('td', 'k', k), f.el('td', 'v', v));
      body.append(tr);
    }
    this.identity.replaceChildren(body);
  }

  renderEnds(ends) {
    this.ends.replaceChildren();
    if (!ends || !ends.length) return;
    const box = f.el('section', 'card');
    box.append(f.el('h3', null, ends.length === 1 ? 'Its end' : 'Its ends (' + ends.length + ' runs)'));
    box.append(endedTable(ends, false));
    this.ends.append(box);
  }
}

// The ended runs as a table; `link`: names open the container's view.
export function endedTable(ends, link) {
  const t = f.el('table', 'ended');
  const head = f.el('tr');
  for (const h of ['ended', 'name', 'image', 'exit code', 'reason', 'CPU time', 'memory peak', 'started']) {
    head.append(f.el('th', null, h));
  }
  const thead = f.el('thead');
  thead.append(head);
  const body = f.el('tbody');
  const now = Date.now();
  for (const e of ends) {
    const tr = f.el('tr');
    tr.dataset.id = e.id;
    const i = e.identity;
    const when = f.el('td', 'when', f.ago(e.ended, now));
    when.title = f.when(e.ended);
    const nameCell = f.el('td', 'name');
    if (link) {
      const a = f.el('a', null, i.name || f.shortId(e.id));
      a.href = '#/c/' + encodeURIComponent(e.id);
      nameCell.append(a);
    } else {
      nameCell.textContent = i.name || f.shortId(e.id);
    }
    const reason = f.el('td', 'reason');
    const badge = f.el('span', 'badge', e.reason || 'unknown');
    if (e.reason === 'OOMKilled') badge.classList.add('oom');
    else if (e.reason === 'Error') badge.classList.add('error');
    else if (!e.reason) badge.classList.add('unknown');
    reason.append(badge);
    tr.append(
      when,
      nameCell,
      f.el('td', 'image', i.image || ''),
      f.el('td', 'code num', e.exit_code === null ? '–' : e.exit_code),
      reason,
      f.el('td', 'num', f.seconds(e.cpu_seconds)),
      f.el('td', 'num', f.bytes(e.memory_peak)),
      f.el('td', 'when', f.when(i.created)),
    );
    body.append(tr);
  }
  t.append(thead, body);
  return t;
}
