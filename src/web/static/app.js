// CEEMS web view: fills the page shells of src/web/pages.ts from the JSON routes under /ui/api/ and draws
// the time series with uPlot (served locally). No framework: the DOM is built with textContent only, so
// no unit name or label is ever parsed as HTML.

(() => {
  const body = document.body;
  const $ = (sel) => document.querySelector(sel);
  /** Charts drawn on this page by id, for people poking around and for the browser tests. */
  const charts = {};
  window.ceemsCharts = charts;

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs ?? {})) {
      if (k === 'class') e.className = v;
      else if (k === 'href') e.setAttribute('href', v);
      else e.setAttribute(k, v);
    }
    for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c ?? '')));
    return e;
  }

  async function getJson(url) {
    const r = await fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
    let j = null;
    try {
      j = await r.json();
    } catch {
      // not JSON: the status says enough
    }
    if (!r.ok) throw new Error(j?.error ? `${r.status}: ${j.error}` : `HTTP ${r.status}`);
    return j;
  }

  const nf = (digits) => new Intl.NumberFormat('en', { maximumFractionDigits: digits });
  function energy(kwh) {
    if (!kwh) return '0 Wh';
    if (kwh >= 1) return `${nf(2).format(kwh)} kWh`;
    const wh = kwh * 1000;
    return wh >= 1 ? `${nf(2).format(wh)} Wh` : `${nf(3).format(wh * 3600)} J`;
  }
  function mass(g) {
    if (!g) return '0 g';
    if (g >= 1000) return `${nf(2).format(g / 1000)} kg`;
    if (g >= 1) return `${nf(2).format(g)} g`;
    return `${nf(2).format(g * 1000)} mg`;
  }
  const percent = (v) => (v === null || v === undefined ? '—' : `${nf(1).format(v)} %`);
  function time(ms) {
    if (!ms) return '—';
    const d = new Date(ms);
    const p = (n) => String(n).padStart(2, '0');
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  }
  const unitLink = (u) =>
    `unit?${new URLSearchParams({ cluster_id: u.cluster_id, uuid: u.uuid }).toString()}`;
  const SOURCE_TEXT = {
    measured: 'measured',
    estimated: 'estimated',
    mixed: 'measured + estimated',
    unknown: 'unknown',
  };
  const sourceBadge = (s) =>
    el('span', { class: `source source-${s}`, title: 'power source of the nodes' }, SOURCE_TEXT[s] ?? s);
  const emissionsCell = (u) =>
    u.emissions_provider
      ? [mass(u.emissions_g), ' ', el('small', { class: 'muted' }, u.emissions_provider)]
      : ['—'];

  function fill(tbody, rows) {
    tbody.replaceChildren(...rows);
  }

  // ----- units page -----
  function unitsPage() {
    const admin = body.dataset.admin === 'true' || $('#units th[data-sort="user"]') !== null;
    const params = new URLSearchParams(location.search);
    const state = {
      sort: params.get('sort') || 'start',
      dir: params.get('dir') || 'desc',
      page: Number(params.get('page')) || 1,
      q: params.get('q') || '',
      size: 25,
    };
    const filter = $('#filter');
    filter.value = state.q;
    let seq = 0;

    async function load() {
      const mine = ++seq;
      const q = new URLSearchParams({
        sort: state.sort,
        dir: state.dir,
        page: String(state.page),
        size: String(state.size),
      });
      if (state.q) q.set('q', state.q);
      history.replaceState(null, '', `?${q.toString()}`);
      body.dataset.loading = 'units';
      let data;
      try {
        data = await getJson(`api/units?${q.toString()}`);
      } catch (e) {
        $('#count').textContent = `Could not load units: ${e.message}`;
        delete body.dataset.loading;
        return;
      }
      if (mine !== seq) return; // a newer request is on its way
      const rows = data.rows.map((u) =>
        el(
          'tr',
          {
            'data-uuid': u.uuid,
            'data-user': u.username,
            'data-energy': String(u.energy_kwh),
            'data-source': u.energy_source,
          },
          el('td', {}, el('a', { href: unitLink(u) }, u.uuid)),
          el('td', {}, u.name),
          el('td', {}, u.project),
          ...(admin ? [el('td', {}, u.username)] : []),
          el('td', {}, u.state),
          el('td', {}, time(u.started_at_ts)),
          el('td', {}, u.ended_at_ts ? time(u.ended_at_ts) : 'running'),
          el('td', { class: 'num' }, percent(u.avg_cpu_usage)),
          el('td', { class: 'num' }, energy(u.energy_kwh)),
          el('td', { class: 'num' }, ...emissionsCell(u)),
          el('td', {}, sourceBadge(u.energy_source)),
        ),
      );
      if (rows.length === 0)
        rows.push(el('tr', {}, el('td', { colspan: admin ? '11' : '10', class: 'muted' }, 'No units.')));
      fill($('#units tbody'), rows);
      const pages = Math.max(1, Math.ceil(data.total / data.size));
      $('#count').textContent = `${nf(0).format(data.total)} units`;
      $('#pageinfo').textContent = `Page ${data.page} of ${pages}`;
      $('#prev').disabled = data.page <= 1;
      $('#next').disabled = data.page >= pages;
      for (const th of document.querySelectorAll('#units th[data-sort]')) {
        th.classList.toggle('sorted-asc', th.dataset.sort === state.sort && state.dir === 'asc');
        th.classList.toggle('sorted-desc', th.dataset.sort === state.sort && state.dir === 'desc');
      }
      delete body.dataset.loading;
      body.dataset.loaded = 'units';
    }

    for (const th of document.querySelectorAll('#units th[data-sort]')) {
      th.tabIndex = 0;
      const sort = () => {
        if (state.sort === th.dataset.sort) state.dir = state.dir === 'asc' ? 'desc' : 'asc';
        else {
          state.sort = th.dataset.sort;
          state.dir = ['uuid', 'name', 'project', 'user', 'state'].includes(state.sort) ? 'asc' : 'desc';
        }
        state.page = 1;
        load();
      };
      th.addEventListener('click', sort);
      th.addEventListener('keydown', (e) => {
        if (e.key === 'Enter') sort();
      });
    }
    let timer;
    filter.addEventListener('input', () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        state.q = filter.value.trim();
        state.page = 1;
        load();
      }, 250);
    });
    $('#prev').addEventListener('click', () => {
      state.page--;
      load();
    });
    $('#next').addEventListener('click', () => {
      state.page++;
      load();
    });

    getJson('api/projects')
      .then((data) => {
        const rows = data.projects.map((p) =>
          el(
            'tr',
            { 'data-project': p.project },
            el('td', {}, p.cluster_id),
            el('td', {}, p.project),
            el('td', { class: 'num' }, nf(0).format(p.units)),
            el('td', { class: 'num' }, energy(p.energy_kwh)),
            el('td', { class: 'num' }, mass(p.emissions_g)),
            el(
              'td',
              { class: 'num' },
              admin ? '' : `${nf(0).format(p.own_units)} units, ${energy(p.own_energy_kwh)}`,
            ),
          ),
        );
        if (rows.length === 0)
          rows.push(el('tr', {}, el('td', { colspan: '6', class: 'muted' }, 'No projects.')));
        fill($('#projects tbody'), rows);
      })
      .catch((e) =>
        fill($('#projects tbody'), [
          el('tr', {}, el('td', { colspan: '6' }, `Could not load: ${e.message}`)),
        ]),
      );
    load();
  }

  // ----- charts -----
  const COLORS = ['#d9480f', '#1971c2', '#2f9e44', '#ae3ec9', '#f08c00', '#0c8599'];
  function axisValue(unit) {
    return (_u, splits) =>
      splits.map((v) => {
        if (v === null || v === undefined) return '';
        if (unit === 'bytes') {
          const k = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
          let i = 0;
          let x = v;
          while (Math.abs(x) >= 1024 && i < k.length - 1) {
            x /= 1024;
            i++;
          }
          return `${nf(1).format(x)} ${k[i]}`;
        }
        return nf(2).format(v);
      });
  }

  async function chart(id, url) {
    const target = $(`#chart-${id}`);
    const status = $(`#status-${id}`);
    try {
      const data = await getJson(url);
      const series = data.series.filter((s) => s.values.some((v) => v !== null));
      if (series.length === 0) {
        status.textContent = 'No data for this period.';
        target.dataset.state = 'empty';
        return;
      }
      const opts = {
        width: Math.max(300, target.clientWidth || 600),
        height: 220,
        scales: { x: { time: true } },
        axes: [{}, { values: axisValue(data.unit), size: 70 }],
        series: [
          {},
          ...series.map((s, i) => ({
            label: s.label || id,
            stroke: COLORS[i % COLORS.length],
            width: 2,
            points: { show: data.x.length < 60 },
          })),
        ],
      };
      charts[id] = new window.uPlot(opts, [data.x, ...series.map((s) => s.values)], target);
      status.textContent = '';
      target.dataset.state = 'drawn';
    } catch (e) {
      status.textContent = `Could not load: ${e.message}`;
      target.dataset.state = 'error';
    }
  }

  // ----- one unit -----
  async function unitPage() {
    const { cluster, uuid } = body.dataset;
    const q = new URLSearchParams({ cluster_id: cluster, uuid });
    try {
      const { unit: u } = await getJson(`api/unit?${q.toString()}`);
      const items = [
        ['User', u.username],
        ['Project', u.project],
        ['Name', u.name],
        ['State', u.state],
        ['Started', time(u.started_at_ts)],
        ['Ended', u.ended_at_ts ? time(u.ended_at_ts) : 'running'],
        ['Elapsed', u.elapsed],
        ['Energy', energy(u.energy_kwh)],
        ['Emissions', u.emissions_provider ? `${mass(u.emissions_g)} CO₂e (${u.emissions_provider})` : '—'],
        ['Energy is', SOURCE_TEXT[u.energy_source] ?? u.energy_source],
        ['Average CPU usage', percent(u.avg_cpu_usage)],
        ['Average memory usage', percent(u.avg_cpu_mem_usage)],
      ];
      $('#summary').replaceChildren(...items.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
    } catch (e) {
      $('#summary').replaceChildren(el('dd', {}, `Could not load: ${e.message}`));
    }
    await Promise.all(
      ['power', 'emissions', 'cpu', 'memory'].map((p) => chart(p, `api/series?${q.toString()}&panel=${p}`)),
    );
    body.dataset.loaded = 'unit';
  }

  // ----- cluster overview (admins) -----
  async function clusterPage() {
    try {
      const data = await getJson('api/cluster');
      fill(
        $('#clusters tbody'),
        data.clusters.map((c) =>
          el(
            'tr',
            { 'data-cluster': c.cluster_id },
            el('td', {}, c.cluster_id),
            el('td', {}, c.resource_manager),
            el('td', { class: 'num' }, nf(0).format(c.units)),
            el('td', { class: 'num' }, nf(0).format(c.running)),
            el('td', { class: 'num' }, nf(0).format(c.users)),
            el('td', { class: 'num' }, nf(0).format(c.projects)),
            el('td', { class: 'num' }, energy(c.energy_kwh)),
            el('td', { class: 'num' }, mass(c.emissions_g)),
          ),
        ),
      );
      const top = (sel, rows) =>
        fill(
          $(sel),
          rows.map((r) =>
            el(
              'tr',
              { 'data-name': r.name },
              el('td', {}, r.cluster_id),
              el('td', {}, r.name),
              el('td', { class: 'num' }, nf(0).format(r.units)),
              el('td', { class: 'num' }, energy(r.energy_kwh)),
              el('td', { class: 'num' }, mass(r.emissions_g)),
            ),
          ),
        );
      top('#top-users tbody', data.topUsers);
      top('#top-projects tbody', data.topProjects);
      const first = data.clusters[0];
      if (first)
        await chart(
          'cluster-power',
          `api/cluster-power?${new URLSearchParams({ cluster_id: first.cluster_id })}`,
        );
      else $('#status-cluster-power').textContent = 'No cluster has units yet.';
    } catch (e) {
      $('#status-cluster-power').textContent = `Could not load: ${e.message}`;
    }
    body.dataset.loaded = 'cluster';
  }

  if (body.dataset.page === 'units') unitsPage();
  else if (body.dataset.page === 'unit') unitPage();
  else if (body.dataset.page === 'cluster') clusterPage();
})();
