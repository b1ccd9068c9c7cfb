// The page: the overview (timelines, the table, the ended list) at `#/`, a container's own
// view at `#/c/<id>`, both updated just after every tick without a reload. Each update is
// measured as `live-update` on the Performance timeline.

import * as f from './format.js';
import { Overview, Schedule } from './data.js';
import { Table } from './table.js';
import { Chart, timeline } from './charts.js';
import { ContainerView, endedTable } from './container.js';

const TOP = 8;

const overview = new Overview();
const schedule = new Schedule();
const status = document.getElementById('status');
const main = document.getElementById('overview');
const single = document.getElementById('container');

// The overview's parts.
const timelines = f.el('section', 'timelines');
const cpuBox = f.el('div');
cpuBox.id = 'timeline-cpu';
const memBox = f.el('div');
memBox.id = 'timeline-memory';
timelines.append(cpuBox, memBox);
const cpuChart = new Chart(cpuBox, 'CPU of every container (cores)', '{cpu}', 200);
const memChart = new Chart(memBox, 'Memory of every container (working set)', 'By', 200);

const tools = f.el('div', 'tools');
const filter = f.el('input');
filter.id = 'filter';
filter.type = 'search';
filter.placeholder = 'filter by name, image, namespace/pod, id';
filter.autocomplete = 'off';
const counts = f.el('span', 'counts');
tools.append(filter, counts);
const tableBox = f.el('section', 'table-box');
const table = new Table(tableBox, id => { location.hash = '#/c/' + encodeURIComponent(id); });
filter.addEventListener('input', () => table.setFilter(filter.value));

const endedBox = f.el('section', 'card ended-box');
endedBox.id = 'ended';
main.append(timelines, tools, tableBox, endedBox);

const view = new ContainerView(single, () => { location.hash = '#/'; });

function nameOf(r) {
  const i = r.identity || {};
  return i.name || f.shortId(r.id);
}

function route() {
  const m = location.hash.match(/^#\/c\/(.+)$/);
  return m ? decodeURIComponent(m[1]) : null;
}

function renderOverview() {
  const xs = overview.ticks.xs();
  cpuChart.set(xs, timeline(overview, 0, TOP, nameOf));
  memChart.set(xs, timeline(overview, 1, TOP, nameOf));
  table.update(overview);
  let containers = 0;
  let pods = 0;
  for (const r of overview.rows.values()) r.kind === 'pod' ? pods++ : containers++;
  counts.textContent = containers + ' containers' + (pods ? ', ' + pods + ' pods' : '') +
    ' · ' + table.order.length + ' shown';
  const ended = overview.ended;
  const title = f.el('h3', null, 'Ended' + (ended.length ? ' (' + ended.length + ', newest first)' : ''));
  const body = ended.length ? endedTable(ended, true) : f.el('p', 'empty', 'No container has ended since the exporter started.');
  endedBox.replaceChildren(title, body);
}

function showStatus(text, bad) {
  status.textContent = text;
  status.classList.toggle('bad', !!bad);
}

let timer = 0;
let busy = false;

async function cycle() {
  if (busy) return;
  busy = true;
  clearTimeout(timer);
  let delay = 2000;
  try {
    const id = route();
    main.hidden = !!id;
    single.hidden = !id;
    performance.mark('live-update-start');
    let tick = NaN;
    let fresh = false;
    if (id) {
      if (view.id !== id) view.open(id);
      const before = view.ticks.seq;
      tick = await view.refresh();
      fresh = view.ticks.seq > before;
    } else {
      fresh = await overview.refresh();
      const t = overview.ticks;
      tick = t.seq ? t.times[t.seq % t.capacity] : NaN;
      renderOverview();
    }
    performance.measure('live-update', 'live-update-start');
    if (performance.getEntriesByName('live-update').length > 500) performance.clearMeasures('live-update');
    schedule.saw(tick);
    const interval = (id ? view.answer && view.answer.interval_s : overview.interval) || 10;
    const history = (id ? view.answer && view.answer.history_s : overview.history) || 0;
    delay = schedule.delay(tick, interval, fresh);
    const seq = id ? view.ticks.seq : overview.ticks.seq;
    document.body.dataset.seq = String(seq);
    document.body.dataset.ready = '1';
    showStatus('updated ' + f.clock(tick) + ' · every ' + interval + ' s · history ' +
      Math.round(history / 60) + ' min');
  } catch (e) {
    showStatus(e.status === 401 ? 'not authorized: reload the page to log in' : 'cannot update: ' + e.message, true);
    delay = 5000;
  } finally {
    busy = false;
  }
  timer = setTimeout(cycle, delay);
}

window.addEventListener('hashchange', () => {
  window.scrollTo(0, 0);
  cycle();
});
cycle();
