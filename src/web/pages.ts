// HTML of the web view: static shells filled by assets/app.js from the JSON routes, and the error pages.
// A page depends only on who asks and the URL (no time, no nonce), so the same request gets the same bytes.
// Every URL is relative to /ui/, so the view also works behind a proxy that mounts it elsewhere.

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};
export const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => ESCAPES[c]!);

export interface Viewer {
  user: string;
  admin: boolean;
}

function layout(
  title: string,
  viewer: Viewer | undefined,
  page: string,
  body: string,
  data: Record<string, string> = {},
) {
  const attrs = Object.entries({ page, ...data })
    .map(([k, v]) => ` data-${k}="${escapeHtml(v)}"`)
    .join('');
  const nav = viewer
    ? `<nav><a href="./">My units</a>${viewer.admin ? ' <a href="cluster">Cluster overview</a>' : ''}</nav>
<span class="who" id="who">${escapeHtml(viewer.user)}${viewer.admin ? ' <span class="badge">admin</span>' : ''}</span>`
    : '';
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} · CEEMS</title>
<link rel="stylesheet" href="assets/uPlot.min.css">
<link rel="stylesheet" href="assets/app.css">
<script src="assets/uPlot.iife.min.js" defer></script>
<script src="assets/app.js" defer></script>
</head>
<body${attrs}>
<header><a class="brand" href="./">CEEMS</a>${nav}</header>
<main>
${body}
</main>
</body>
</html>
`;
}

export function unitsPage(v: Viewer): string {
  return layout(
    'My units',
    v,
    'units',
    `<h1>${v.admin ? 'Units of every user' : `Units of ${escapeHtml(v.user)}`}</h1>
<section>
<h2>Project totals</h2>
<table id="projects" class="data"><thead><tr><th>Cluster</th><th>Project</th><th class="num">Units</th><th class="num">Energy</th><th class="num">Emissions</th><th class="num">${v.admin ? '' : 'Mine'}</th></tr></thead><tbody></tbody></table>
</section>
<section>
<h2>Units</h2>
<div class="controls">
<input id="filter" type="search" placeholder="Filter: id, name, project, user, state" aria-label="Filter units">
<span id="count" class="muted"></span>
</div>
<table id="units" class="data"><thead><tr>
<th data-sort="uuid">Unit</th><th data-sort="name">Name</th><th data-sort="project">Project</th>${v.admin ? '<th data-sort="user">User</th>' : ''}<th data-sort="state">State</th>
<th data-sort="start">Started</th><th data-sort="end">Ended</th><th data-sort="cpu" class="num">CPU</th>
<th data-sort="energy" class="num">Energy</th><th data-sort="emissions" class="num">Emissions</th><th>Energy is</th>
</tr></thead><tbody></tbody></table>
<div class="pager"><button id="prev" type="button">‹ Previous</button><span id="pageinfo"></span><button id="next" type="button">Next ›</button></div>
</section>`,
  );
}

export function unitPage(v: Viewer, cluster: string, uuid: string): string {
  const chart = (id: string, title: string) =>
    `<figure class="chart"><figcaption>${title}</figcaption><div id="chart-${id}" class="plot"></div><p class="status" id="status-${id}">loading…</p></figure>`;
  return layout(
    `Unit ${uuid}`,
    v,
    'unit',
    `<h1>Unit <span id="unit-title">${escapeHtml(uuid)}</span> <small class="muted">${escapeHtml(cluster)}</small></h1>
<dl id="summary" class="summary"></dl>
<div class="charts">
${chart('power', 'Power (W)')}
${chart('emissions', 'Emissions (g CO₂e per hour)')}
${chart('cpu', 'CPU usage (% of allocated CPUs)')}
${chart('memory', 'Memory used')}
</div>`,
    { cluster, uuid },
  );
}

export function clusterPage(v: Viewer): string {
  return layout(
    'Cluster overview',
    v,
    'cluster',
    `<h1>Cluster overview</h1>
<table id="clusters" class="data"><thead><tr><th>Cluster</th><th>Manager</th><th class="num">Units</th><th class="num">Running</th><th class="num">Users</th><th class="num">Projects</th><th class="num">Energy</th><th class="num">Emissions</th></tr></thead><tbody></tbody></table>
<div class="charts">
<figure class="chart"><figcaption>Node power and the power attributed to units (W), last hour</figcaption><div id="chart-cluster-power" class="plot"></div><p class="status" id="status-cluster-power">loading…</p></figure>
</div>
<div class="columns">
<section><h2>Top users by energy</h2><table id="top-users" class="data"><thead><tr><th>Cluster</th><th>User</th><th class="num">Units</th><th class="num">Energy</th><th class="num">Emissions</th></tr></thead><tbody></tbody></table></section>
<section><h2>Top projects by energy</h2><table id="top-projects" class="data"><thead><tr><th>Cluster</th><th>Project</th><th class="num">Units</th><th class="num">Energy</th><th class="num">Emissions</th></tr></thead><tbody></tbody></table></section>
</div>`,
  );
}

const TITLES: Record<number, string> = { 400: 'Bad request', 401: 'Not logged in', 403: 'Forbidden' };

/** An error page; `viewer` undefined when nobody is identified. */
export function errorPage(status: 400 | 401 | 403, message: string, viewer?: Viewer): string {
  return layout(
    `${status} ${TITLES[status]}`,
    viewer,
    'error',
    `<div class="error" id="error"><h1>${status} ${TITLES[status]}</h1><p>${escapeHtml(message)}</p><p><a href="./">Back to my units</a></p></div>`,
    { status: String(status) },
  );
}
