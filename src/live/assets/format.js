// Numbers and times as the page shows them. Every function returns plain text: the page
// puts it in the DOM with textContent only.

const BIN = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

function scaled(v, step, units, digits) {
  let i = 0;
  let a = Math.abs(v);
  while (a >= step && i < units.length - 1) {
    a /= step;
    v /= step;
    i++;
  }
  const d = a >= 100 || (i === 0 && Number.isInteger(a)) ? 0 : a >= 10 ? 1 : digits;
  return v.toFixed(d) + ' ' + units[i];
}

export function bytes(v) {
  if (!Number.isFinite(v)) return '–';
  return scaled(v, 1024, BIN, 2);
}

export function rate(v) {
  if (!Number.isFinite(v)) return '–';
  return scaled(v, 1024, BIN, 2) + '/s';
}

export function cores(v) {
  if (!Number.isFinite(v)) return '–';
  if (v === 0) return '0';
  if (v < 0.001) return '<0.001';
  return v < 10 ? String(Number(v.toPrecision(3))) : v.toFixed(1);
}

export function share(v) {
  if (!Number.isFinite(v)) return '–';
  const p = v * 100;
  if (p === 0) return '0%';
  if (p < 0.1) return '<0.1%';
  return (p < 10 ? p.toFixed(1) : p.toFixed(0)) + '%';
}

export function count(v) {
  if (!Number.isFinite(v)) return '–';
  if (Math.abs(v) >= 1e6) return scaled(v, 1000, ['', 'k', 'M', 'G', 'T'], 2).trim();
  return Number.isInteger(v) ? String(v) : v.toFixed(v < 10 ? 2 : 1);
}

export function seconds(v) {
  if (!Number.isFinite(v)) return '–';
  if (v < 60) return v.toFixed(v < 10 ? 2 : 1) + ' s';
  if (v < 3600) return (v / 60).toFixed(1) + ' min';
  return (v / 3600).toFixed(1) + ' h';
}

// By unit, as the API names them (OpenTelemetry's units; a rate ends in `/s`).
export function byUnit(unit) {
  switch (unit) {
    case 'By': return bytes;
    case 'By/s': return rate;
    case '{cpu}': return cores;
    case 's/s': return share;
    case '1': return share;
    case 's': return seconds;
    default: return v => count(v) + (unit.endsWith('/s') ? '/s' : '');
  }
}

export function clock(ms) {
  if (!Number.isFinite(ms)) return '–';
  const d = new Date(ms);
  return d.toLocaleTimeString([], { hour12: false });
}

export function when(ms) {
  if (!Number.isFinite(ms)) return '–';
  const d = new Date(ms);
  const date = d.toISOString().slice(0, 10);
  return date + ' ' + d.toLocaleTimeString([], { hour12: false });
}

export function ago(ms, now) {
  const s = Math.max(0, (now - ms) / 1000);
  if (s < 90) return Math.round(s) + ' s ago';
  if (s < 5400) return Math.round(s / 60) + ' min ago';
  if (s < 172800) return Math.round(s / 3600) + ' h ago';
  return Math.round(s / 86400) + ' d ago';
}

export function shortId(id) {
  return id.length > 12 ? id.slice(0, 12) : id;
}

// Text nodes only: the one way this page puts names, labels and values into the DOM.
export function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}
