// Charts with uPlot (vendored, see vendor/uplot/): the timelines of every container together,
// and a container's own charts with its limits drawn as lines. Labels reach uPlot as plain
// strings, which it writes with textContent.

import * as f from './format.js';

/* global uPlot */

export const PALETTE = [
  '#2563eb', '#dc2626', '#059669', '#d97706', '#9333ea', '#0891b2', '#db2777', '#65a30d',
  '#7c3aed', '#ea580c', '#0d9488', '#4f46e5',
];

const OTHERS = '#94a3b8';

// A container's colour, the same in every chart.
export function colorOf(id) {
  let h = 0;
  for (let i = 0; i < id.length; i++) h = (h * 31 + id.charCodeAt(i)) >>> 0;
  return PALETTE[h % PALETTE.length];
}
const LIMIT = '#ef4444';

function width(el) {
  return Math.max(240, Math.floor(el.clientWidth || el.parentNode.clientWidth || 600));
}

// A chart in `box`: `lines` are {label, values, color, dash, limit}; `xs` the tick times (s).
export class Chart {
  constructor(box, title, unit, height) {
    this.box = box;
    this.unit = unit;
    this.fmt = f.byUnit(unit);
    this.height = height || 180;
    this.labels = null;
    this.plot = null;
    box.classList.add('chart');
    this.head = f.el('div', 'chart-head');
    this.title = f.el('span', 'chart-title', title);
    this.focus = f.el('span', 'chart-focus');
    this.head.append(this.title, this.focus);
    this.area = f.el('div', 'chart-area');
    box.append(this.head, this.area);
    window.addEventListener('resize', () => {
      if (this.plot) this.plot.setSize({ width: width(this.area), height: this.height });
    });
  }

  set(xs, lines) {
    const labels = lines.map(l => l.label + '\u0000' + (l.limit ? 1 : 0)).join('\u0001');
    const data = [xs, ...lines.map(l => l.values)];
    if (this.plot && labels === this.labels) {
      this.plot.setData(data);
    } else {
      if (this.plot) this.plot.destroy();
      this.labels = labels;
      this.plot = new uPlot(this.options(lines), data, this.area);
    }
    const first = lines.find(l => !l.limit);
    const points = first ? first.values.filter(v => v !== null).length : 0;
    this.box.dataset.points = String(points);
    this.box.dataset.lines = String(lines.filter(l => !l.limit).length);
  }

  options(lines) {
    const fmt = this.fmt;
    const focus = this.focus;
    return {
      width: width(this.area),
      height: this.height,
      cursor: { focus: { prox: 24 }, points: { size: 6 } },
      focus: { alpha: 0.35 },
      legend: { live: true },
      scales: { x: { time: true }, y: { range: (u, min, max) => [Math.min(0, min), max > 0 ? max * 1.1 : 1] } },
      axes: [
        { stroke: '#64748b', grid: { stroke: '#e2e8f0' }, ticks: { stroke: '#e2e8f0' } },
        {
          stroke: '#64748b',
          size: 72,
          grid: { stroke: '#e2e8f0' },
          ticks: { stroke: '#e2e8f0' },
          values: (u, vals) => vals.map(v => fmt(v)),
        },
      ],
      series: [
        { label: 'time', value: (u, v) => (v === null ? '–' : f.clock(v * 1000)) },
        ...lines.map(l => ({
          label: l.label,
          stroke: l.color,
          width: l.limit ? 1.5 : 1.6,
          dash: l.dash || (l.limit ? [6, 4] : undefined),
          spanGaps: false,
          points: { show: false },
          value: (u, v) => (v === null ? '–' : fmt(v)),
        })),
      ],
      hooks: {
        // Hovering near a line names it.
        setSeries: [(u, i) => {
          focus.textContent = i === null || i === undefined ? '' : u.series[i].label;
        }],
      },
    };
  }
}

// Every container's series `s` together: the `top` biggest (by their mean over the kept
// history) as lines, the rest summed into one.
export function timeline(data, s, top, nameOf) {
  const kept = data.ticks.kept();
  const rows = [];
  for (const r of data.rows.values()) {
    if (r.kind === 'pod') continue;
    const ring = r.rings[s];
    if (!ring) continue;
    let sum = 0;
    let n = 0;
    const values = kept.map(([, slot]) => {
      const v = ring[slot];
      if (Number.isNaN(v)) return null;
      sum += v;
      n++;
      return v;
    });
    if (n) rows.push({ r, values, mean: sum / n });
  }
  rows.sort((a, b) => b.mean - a.mean || (a.r.id < b.r.id ? -1 : 1));
  const lines = rows.slice(0, top).map(x => ({
    label: nameOf(x.r),
    values: x.values,
    color: colorOf(x.r.id),
  }));
  const rest = rows.slice(top);
  if (rest.length) {
    const values = kept.map((_, i) => {
      let sum = null;
      for (const x of rest) if (x.values[i] !== null) sum = (sum || 0) + x.values[i];
      return sum;
    });
    lines.push({ label: rest.length + ' others', values, color: OTHERS, dash: [3, 3] });
  }
  return lines;
}

// A limit as a line over the ticks: the value in force at each (`changes`: [tick, value]).
export function limitLine(label, changes, kept) {
  if (!changes || !changes.length) return null;
  const values = kept.map(([seq]) => {
    let v = null;
    for (const [at, value] of changes) if (at <= seq) v = value;
    if (v === null) v = changes[0][1];
    return v;
  });
  if (values.every(v => v === null)) return null;
  return { label, values, color: LIMIT, limit: true };
}
