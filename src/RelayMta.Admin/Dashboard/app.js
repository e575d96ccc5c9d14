// RelayMta live dashboard: plain JavaScript, no framework, no build step, no external URL.
// It polls the admin JSON API every 2 seconds (and right after each action) and updates the
// page in place, so focus and scroll survive a refresh. URLs are relative to the page, so the
// dashboard also works behind a reverse proxy that adds a path prefix.
'use strict';

(() => {
  const REFRESH_MS = 2000;
  const REQUEST_TIMEOUT_MS = 10000;
  const PAGE_SIZE = 50;
  const RECENT_ROWS = 50;
  const TOKEN_KEY = 'relaymta.admin.token';
  const SERIES = ['accepted', 'delivered', 'deferred', 'bounced'];

  // ---------------------------------------------------------------- the API (see README, "Admin HTTP API")

  const enc = encodeURIComponent;
  const api = {
    summary: () => request('GET', 'api/queue'),
    stats: () => request('GET', 'api/stats'),
    messages: (state) => {
      const q = new URLSearchParams({ page: '1', pageSize: String(PAGE_SIZE) });
      if (state) q.set('state', state);
      return request('GET', 'api/messages?' + q);
    },
    retryMessage: (id) => request('POST', `api/messages/${enc(id)}/retry`),
    hold: (id) => request('POST', `api/messages/${enc(id)}/hold`),
    release: (id) => request('POST', `api/messages/${enc(id)}/release`),
    deleteMessage: (id, bounce) => request('DELETE', `api/messages/${enc(id)}?bounce=${bounce ? 'true' : 'false'}`),
    retryDestination: (d) => request('POST', `api/destinations/${enc(d)}/retry`),
    suspend: (d) => request('POST', `api/destinations/${enc(d)}/suspend`),
    resume: (d) => request('POST', `api/destinations/${enc(d)}/resume`),
  };

  class ApiError extends Error {
    constructor(method, path, status, message) {
      super(message);
      this.method = method;
      this.path = path;
      this.status = status;
    }
    describe() {
      const where = `${this.method} /${this.path.split('?')[0]}`;
      return this.status ? `${where} failed (${this.status}): ${this.message}` : `${where} failed: ${this.message}`;
    }
  }

  let serverOffsetMs = 0; // server clock minus ours, when the two disagree noticeably

  async function request(method, path) {
    const headers = { Accept: 'application/json' };
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers.Authorization = 'Bearer ' + token;
    let res;
    try {
      res = await fetch(path, { method, headers, cache: 'no-store', signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    } catch (e) {
      const why = e && e.name === 'TimeoutError' ? 'no answer in time' : 'the relay cannot be reached';
      throw new ApiError(method, path, 0, why);
    }
    const date = Date.parse(res.headers.get('Date') || '');
    if (!Number.isNaN(date)) {
      const offset = date - Date.now();
      serverOffsetMs = Math.abs(offset) > 3000 ? offset : 0; // Date has 1 s resolution: ignore jitter
    }
    const text = await res.text();
    let body = null;
    if (text) {
      try { body = JSON.parse(text); } catch { body = null; }
    }
    if (!res.ok) {
      const detail = body && (body.error || body.detail || body.title || body.message);
      throw new ApiError(method, path, res.status, detail || text.trim().slice(0, 300) || res.statusText || 'error');
    }
    return body;
  }

  // ---------------------------------------------------------------- formatting

  const now = () => Date.now() + serverOffsetMs;

  function duration(ms) {
    let s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return `${s}s`;
    let m = Math.floor(s / 60); s %= 60;
    if (m < 60) return `${m}m ${String(s).padStart(2, '0')}s`;
    let h = Math.floor(m / 60); m %= 60;
    if (h < 24) return `${h}h ${String(m).padStart(2, '0')}m`;
    const d = Math.floor(h / 24); h %= 24;
    return `${d}d ${h}h`;
  }

  const parseTime = (iso) => (iso ? Date.parse(iso) : NaN);
  const age = (iso) => { const t = parseTime(iso); return Number.isNaN(t) ? '–' : duration(now() - t); };

  function until(iso) {
    const t = parseTime(iso);
    if (Number.isNaN(t)) return '–';
    const ms = t - now();
    return ms <= 1000 ? 'now' : 'in ' + duration(ms);
  }

  const clock = (t) => new Date(t).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
  const hhmm = (t) => new Date(t).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', hour12: false });
  const fullTime = (iso) => { const t = parseTime(iso); return Number.isNaN(t) ? '' : new Date(t).toLocaleString(); };

  function bytes(n) {
    if (n == null) return '–';
    if (n < 1024) return `${n} B`;
    if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
    return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  }

  const num = (n) => (n == null ? '–' : Number(n).toLocaleString());

  // ---------------------------------------------------------------- DOM helpers

  const $ = (id) => document.querySelector(`[data-testid="${id}"]`);

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'testid') e.dataset.testid = v;
      else e.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children) if (c != null) e.append(c);
    return e;
  }

  // Writes only what changed, so the browser does no work for cells that stay the same.
  function setText(node, text) {
    const t = text == null ? '' : String(text);
    if (node.textContent !== t) node.textContent = t;
  }

  function setAttr(node, name, value) {
    if (value == null || value === false) { if (node.hasAttribute(name)) node.removeAttribute(name); }
    else if (node.getAttribute(name) !== String(value)) node.setAttribute(name, value);
  }

  const cell = (tr, id) => tr.querySelector(`[data-testid="${id}"]`);

  // Keyed update of a tbody: rows are kept (and so is focus on their buttons), moved, added, removed.
  function syncRows(tbody, items, keyOf, create, update) {
    const existing = new Map();
    for (const tr of Array.from(tbody.rows)) existing.set(tr.dataset.key, tr);
    let prev = null;
    for (const item of items) {
      const key = keyOf(item);
      let tr = existing.get(key);
      if (tr) existing.delete(key);
      else { tr = create(item); tr.dataset.key = key; }
      update(tr, item);
      const wanted = prev ? prev.nextSibling : tbody.firstChild;
      if (wanted !== tr) tbody.insertBefore(tr, wanted);
      prev = tr;
    }
    for (const tr of existing.values()) tr.remove();
  }

  // ---------------------------------------------------------------- errors, status and the token

  const banner = { refresh: null, action: null };

  function showErrors() {
    const msgs = [banner.action, banner.refresh].filter(Boolean);
    setText($('error-text'), msgs.join(' · '));
    $('error-banner').hidden = msgs.length === 0;
  }

  let statusTimer = null;
  function status(text) {
    setText($('action-status'), text);
    clearTimeout(statusTimer);
    statusTimer = setTimeout(() => setText($('action-status'), ''), 8000);
  }

  function setConnection(state, text) {
    const node = $('connection-state');
    node.dataset.state = state;
    setText(node, text);
  }

  let needToken = false;

  // #token=... in the address: keep it for this tab only and take it out of the address bar and history.
  function takeTokenFromFragment() {
    if (!location.hash) return;
    const params = new URLSearchParams(location.hash.slice(1));
    if (!params.has('token')) return;
    const token = params.get('token');
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    params.delete('token');
    const rest = params.toString();
    history.replaceState(null, '', location.pathname + location.search + (rest ? '#' + rest : ''));
  }

  function askForToken() {
    const hadToken = !!sessionStorage.getItem(TOKEN_KEY);
    sessionStorage.removeItem(TOKEN_KEY);
    needToken = true;
    clearTimeout(timer);
    setText($('token-reason'), hadToken ? 'The relay refused the token. Enter the admin token.'
      : "This relay's admin API needs a token.");
    const form = $('token-form');
    const wasHidden = form.hidden;
    form.hidden = false;
    if (wasHidden) $('token-input').focus();
    setConnection('token', 'token needed');
  }

  $('token-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const value = $('token-input').value.trim();
    if (!value) return;
    sessionStorage.setItem(TOKEN_KEY, value);
    $('token-input').value = '';
    $('token-form').hidden = true;
    needToken = false;
    refresh();
  });

  // ---------------------------------------------------------------- header and destinations

  function renderSummary(s) {
    setText($('queue-total'), num(s.messages));
    setText($('queue-recipients'), num(s.recipients));
    setText($('queue-oldest'), s.oldest ? age(s.oldest) : '–');
    setAttr($('queue-oldest'), 'title', s.oldest ? 'accepted ' + fullTime(s.oldest) : null);

    const rows = s.destinations || [];
    syncRows($('destinations-body'), rows, (d) => d.destination, createDestinationRow, updateDestinationRow);
    $('destinations-empty').hidden = rows.length > 0;
  }

  function createDestinationRow() {
    return el('tr', { testid: 'destination-row' },
      el('th', { scope: 'row', testid: 'destination-name', class: 'mono' }),
      el('td', { class: 'num', testid: 'destination-messages' }),
      el('td', { class: 'num', testid: 'destination-recipients' }),
      el('td', { class: 'nowrap', testid: 'destination-oldest' }),
      el('td', { class: 'nowrap', testid: 'destination-next-attempt' }),
      el('td', { class: 'num', testid: 'destination-connections' }),
      el('td', { class: 'reply', testid: 'destination-last-error' }),
      el('td', { class: 'flags' },
        el('span', { class: 'badge warn', testid: 'destination-suspended', hidden: true }, 'suspended'),
        el('span', { class: 'badge bad', testid: 'destination-circuit-open', hidden: true }, 'circuit open')),
      el('td', { class: 'actions' },
        el('button', { type: 'button', testid: 'suspend-button', 'data-action': 'toggle-suspend' }),
        el('button', { type: 'button', testid: 'retry-destination-button', 'data-action': 'retry-destination' },
          'Retry destination')));
  }

  function updateDestinationRow(tr, d) {
    tr.dataset.destination = d.destination;
    tr.dataset.suspended = String(!!d.suspended);
    tr.dataset.circuitOpen = String(!!d.circuitOpen);
    setText(cell(tr, 'destination-name'), d.destination);
    setText(cell(tr, 'destination-messages'), num(d.messages));
    setText(cell(tr, 'destination-recipients'), num(d.recipients));
    setText(cell(tr, 'destination-oldest'), age(d.oldest));
    setAttr(cell(tr, 'destination-oldest'), 'title', fullTime(d.oldest) || null);
    setText(cell(tr, 'destination-next-attempt'), d.suspended ? 'suspended' : until(d.nextAttempt));
    setAttr(cell(tr, 'destination-next-attempt'), 'title', fullTime(d.nextAttempt) || null);
    setText(cell(tr, 'destination-connections'), num(d.connections));
    setText(cell(tr, 'destination-last-error'), d.lastError || '');
    cell(tr, 'destination-suspended').hidden = !d.suspended;
    cell(tr, 'destination-circuit-open').hidden = !d.circuitOpen;

    const toggle = tr.querySelector('[data-action="toggle-suspend"]');
    toggle.dataset.testid = d.suspended ? 'resume-button' : 'suspend-button';
    setText(toggle, d.suspended ? 'Resume' : 'Suspend');
    setAttr(toggle, 'aria-label', `${d.suspended ? 'Resume' : 'Suspend'} deliveries to ${d.destination}`);
    setAttr(tr.querySelector('[data-action="retry-destination"]'), 'aria-label', `Retry destination ${d.destination} now`);
  }

  // ---------------------------------------------------------------- the activity chart (inline SVG)

  const SVG = 'http://www.w3.org/2000/svg';
  const W = 1200, H = 280, M = { left: 48, right: 14, top: 14, bottom: 42 };
  let lastChartKey = '';

  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text != null) e.textContent = text;
    return e;
  }

  // A round top for the y axis and a step that gives at most 5 intervals (1, 2 or 5 times a power of 10).
  function yScale(v) {
    const top = Math.max(4, v);
    for (let p = 1; ; p *= 10) {
      for (const m of [1, 2, 5]) {
        const step = m * p;
        if (Math.ceil(top / step) <= 5) return { max: Math.ceil(top / step) * step, step };
      }
    }
  }

  function renderStats(stats) {
    const bucketSeconds = stats.bucketSeconds || 10;
    const windowMinutes = Number($('chart-window').value) || 10;
    const wanted = Math.max(1, Math.round((windowMinutes * 60) / bucketSeconds));
    const all = stats.buckets || [];
    const buckets = all.slice(-wanted);

    const totals = Object.fromEntries(SERIES.map((s) => [s, buckets.reduce((a, b) => a + (b[s] || 0), 0)]));
    for (const s of SERIES) setText($('stats-total-' + s), num(totals[s]));

    const key = windowMinutes + '|' + JSON.stringify(buckets);
    if (key !== lastChartKey) {
      lastChartKey = key;
      const seconds = drawChart(buckets, bucketSeconds, totals);
      setText($('chart-caption'), `Counts per ${seconds} seconds over the last ${windowMinutes} minutes; the totals above are for the whole window.`);
    }
    renderRecent(stats.recent || []);
  }

  // Grouped bars: per column one bar for each series. Long windows merge neighbouring buckets
  // into one column (at most MAX_COLUMNS), so bars never get thinner than a few pixels.
  const MAX_COLUMNS = 60;

  function drawChart(buckets, bucketSeconds, totals) {
    const chart = $('stats-chart');
    const title = chart.querySelector('title');
    const desc = chart.querySelector('desc');
    chart.replaceChildren(title, desc);
    setText(desc, SERIES.map((s) => `${s} ${totals[s]}`).join(', ') + ` in the last ${buckets.length} buckets.`);
    for (const s of SERIES) chart.dataset[s] = String(totals[s]);
    if (buckets.length === 0) return bucketSeconds;

    // Columns are aligned to whole multiples of their length, so labels stay put between refreshes.
    const per = Math.ceil(buckets.length / MAX_COLUMNS);
    const seconds = per * bucketSeconds;
    const columns = [];
    for (const b of buckets) {
      const t = parseTime(b.start);
      const start = Number.isNaN(t) ? NaN : Math.floor(t / (seconds * 1000)) * seconds * 1000;
      let column = columns[columns.length - 1];
      if (!column || !(column.start === start)) {
        column = { start, accepted: 0, delivered: 0, deferred: 0, bounced: 0 };
        columns.push(column);
      }
      for (const s of SERIES) column[s] += b[s] || 0;
    }

    const pw = W - M.left - M.right, ph = H - M.top - M.bottom;
    const { max, step } = yScale(Math.max(0, ...columns.flatMap((c) => SERIES.map((s) => c[s]))));
    const colW = pw / columns.length;
    const barW = (colW * 0.8) / SERIES.length;
    const x = (i) => M.left + i * colW;
    const y = (v) => M.top + ph - (v / max) * ph;

    // Grid and y axis: whole steps from 0 to a round maximum.
    const grid = svg('g', { class: 'grid', 'aria-hidden': 'true' });
    for (let v = 0; v <= max; v += step) {
      const yy = y(v).toFixed(1);
      grid.append(svg('line', { x1: M.left, x2: W - M.right, y1: yy, y2: yy }));
      grid.append(svg('text', { x: M.left - 6, y: Number(yy) + 4, 'text-anchor': 'end', class: 'tick' }, v.toLocaleString()));
    }
    // X axis: a label at each whole minute (every 5 minutes on long windows).
    const everyMinutes = columns.length * seconds > 900 ? 5 : 1;
    columns.forEach((c, i) => {
      if (Number.isNaN(c.start) || c.start % (everyMinutes * 60000) !== 0) return;
      const xx = x(i).toFixed(1);
      grid.append(svg('line', { x1: xx, x2: xx, y1: M.top + ph, y2: M.top + ph + 5, class: 'tickmark' }));
      grid.append(svg('text', { x: xx, y: M.top + ph + 18, 'text-anchor': 'middle', class: 'tick' }, hhmm(c.start)));
    });
    grid.append(svg('text', { x: M.left + pw / 2, y: H - 4, 'text-anchor': 'middle', class: 'axis-label' }, 'time'));
    grid.append(svg('text', { x: 12, y: M.top + ph / 2, 'text-anchor': 'middle', class: 'axis-label',
      transform: `rotate(-90 12 ${M.top + ph / 2})` }, `count per ${seconds} s`));
    grid.append(svg('line', { x1: M.left, x2: W - M.right, y1: M.top + ph, y2: M.top + ph, class: 'axis' }));
    chart.append(grid);

    // One group per series; a bar for each non-zero column.
    SERIES.forEach((s, k) => {
      const g = svg('g', { class: 'series series-' + s, 'data-testid': 'chart-series', 'data-series': s, 'data-total': totals[s] });
      columns.forEach((c, i) => {
        if (!c[s]) return;
        g.append(svg('rect', {
          x: (x(i) + colW * 0.1 + k * barW).toFixed(1), y: y(c[s]).toFixed(1),
          width: Math.max(1, barW - 0.5).toFixed(1), height: Math.max(1, (c[s] / max) * ph).toFixed(1),
          'data-testid': 'chart-bar', 'data-value': c[s],
        }));
      });
      chart.append(g);
    });

    // Hover targets: one transparent column each, with a native tooltip.
    const hover = svg('g', { class: 'hover' });
    columns.forEach((c, i) => {
      const r = svg('rect', { x: x(i).toFixed(1), y: M.top, width: colW.toFixed(1), height: ph });
      const from = Number.isNaN(c.start) ? '' : clock(c.start);
      r.append(svg('title', {}, `${from} (+${seconds} s): ` + SERIES.map((s) => `${s} ${c[s]}`).join(', ')));
      hover.append(r);
    });
    chart.append(hover);
    return seconds;
  }

  // ---------------------------------------------------------------- recent deliveries

  let lastRecentKey = '';

  function renderRecent(recent) {
    const rows = recent.slice(0, RECENT_ROWS);
    $('recent-empty').hidden = rows.length > 0;
    const key = JSON.stringify(rows);
    if (key === lastRecentKey) return;
    lastRecentKey = key;
    const body = $('recent-body');
    body.replaceChildren(...rows.map((r) => {
      const t = parseTime(r.at);
      return el('tr', { testid: 'recent-row', 'data-result': r.result, 'data-queue-id': r.queueId, 'data-recipient': r.recipient },
        el('td', { class: 'nowrap' }, el('time', { datetime: r.at, title: fullTime(r.at) }, Number.isNaN(t) ? r.at : clock(t))),
        el('td', { class: 'mono' }, r.queueId),
        el('td', { testid: 'recent-recipient' }, r.recipient),
        el('td', { class: 'mono' }, r.relay),
        el('td', {}, r.tls || 'none'),
        el('td', { class: 'mono', testid: 'recent-status' }, r.status),
        el('td', {}, el('span', { class: 'badge ' + resultClass(r.result), testid: 'recent-result' }, r.result)),
        el('td', { class: 'reply', testid: 'recent-reply' }, r.diagnostic));
    }));
  }

  function resultClass(result) {
    switch (result) {
      case 'sent': case 'delivered': return 'good';
      case 'deferred': return 'warn';
      default: return 'bad';
    }
  }

  // ---------------------------------------------------------------- messages

  function renderMessages(list) {
    const items = list.items || [];
    syncRows($('messages-body'), items, (m) => m.id, createMessageRow, updateMessageRow);
    $('messages-empty').hidden = items.length > 0;
    const total = list.total ?? items.length;
    setText($('messages-count'), total > items.length
      ? `first ${items.length} of ${num(total)} messages (oldest first)` : `${num(total)} message${total === 1 ? '' : 's'}`);
  }

  function createMessageRow() {
    return el('tr', { testid: 'message-row' },
      el('th', { scope: 'row', class: 'mono', testid: 'message-id' }),
      el('td', { class: 'mono', testid: 'message-sender' }),
      el('td', { class: 'num', testid: 'message-recipients' }),
      el('td', { class: 'nowrap', testid: 'message-age' }),
      el('td', { class: 'num', testid: 'message-size' }),
      el('td', {}, el('span', { class: 'badge', testid: 'message-state' })),
      el('td', { class: 'nowrap', testid: 'message-next-attempt' }),
      el('td', { class: 'num', testid: 'message-attempts' }),
      el('td', { class: 'mono', testid: 'message-destinations' }),
      el('td', { class: 'reply', testid: 'message-last-error' }),
      el('td', { class: 'actions' },
        el('button', { type: 'button', testid: 'retry-button', 'data-action': 'retry' }, 'Retry'),
        el('button', { type: 'button', testid: 'hold-button', 'data-action': 'hold' }, 'Hold'),
        el('button', { type: 'button', testid: 'delete-button', 'data-action': 'delete', class: 'danger' }, 'Delete')));
  }

  function updateMessageRow(tr, m) {
    tr.dataset.id = m.id;
    tr.dataset.state = m.state;
    setText(cell(tr, 'message-id'), m.id);
    setText(cell(tr, 'message-sender'), m.sender ? m.sender : '<>');
    setText(cell(tr, 'message-recipients'), m.pending === m.recipients ? num(m.recipients) : `${num(m.pending)} of ${num(m.recipients)}`);
    setAttr(cell(tr, 'message-recipients'), 'title', `${m.pending} pending of ${m.recipients}`);
    setText(cell(tr, 'message-age'), age(m.received));
    setAttr(cell(tr, 'message-age'), 'title', fullTime(m.received) || null);
    setText(cell(tr, 'message-size'), bytes(m.size));
    const state = cell(tr, 'message-state');
    setText(state, m.state);
    setAttr(state, 'class', 'badge ' + ({ active: 'good', deferred: 'warn', held: 'muted' }[m.state] || ''));
    setText(cell(tr, 'message-next-attempt'), m.state === 'held' ? 'held' : until(m.nextAttempt));
    setAttr(cell(tr, 'message-next-attempt'), 'title', fullTime(m.nextAttempt) || null);
    setText(cell(tr, 'message-attempts'), num(m.attempts));
    setText(cell(tr, 'message-destinations'), (m.destinations || []).join(', '));
    setText(cell(tr, 'message-last-error'), m.lastError || '');

    const held = m.state === 'held';
    const hold = tr.querySelector('[data-action="hold"], [data-action="release"]');
    hold.dataset.action = held ? 'release' : 'hold';
    hold.dataset.testid = held ? 'release-button' : 'hold-button';
    setText(hold, held ? 'Release' : 'Hold');
    setAttr(hold, 'aria-label', `${held ? 'Release' : 'Hold'} message ${m.id}`);
    setAttr(tr.querySelector('[data-action="retry"]'), 'aria-label', `Retry message ${m.id} now`);
    setAttr(tr.querySelector('[data-action="delete"]'), 'aria-label', `Delete message ${m.id}`);
  }

  // ---------------------------------------------------------------- refresh loop

  let timer = null;
  let running = null;
  let again = false;
  let paused = false;

  function schedule() {
    clearTimeout(timer);
    if (!paused && !needToken && !document.hidden) timer = setTimeout(refresh, REFRESH_MS);
  }

  // One refresh at a time; a refresh asked for meanwhile runs right after.
  async function refresh() {
    if (running) { again = true; return running; }
    clearTimeout(timer);
    running = (async () => {
      const [summary, stats, messages] = await Promise.allSettled([api.summary(), api.stats(), api.messages($('state-filter').value)]);
      const errors = [];
      let unauthorized = false;
      for (const [r, render] of [[summary, renderSummary], [stats, renderStats], [messages, renderMessages]]) {
        if (r.status === 'fulfilled') {
          try { render(r.value || {}); } catch (e) { errors.push('cannot show the answer: ' + e.message); }
        } else if (r.reason instanceof ApiError && r.reason.status === 401) {
          unauthorized = true;
        } else {
          errors.push(r.reason instanceof ApiError ? r.reason.describe() : String(r.reason));
        }
      }
      if (unauthorized) { askForToken(); return; }
      banner.refresh = errors.length ? errors.join(' · ') : null;
      showErrors();
      if (errors.length < 3) {
        const at = Date.now();
        const node = $('last-refresh');
        setText(node, clock(at));
        setAttr(node, 'datetime', new Date(at).toISOString());
      }
      setConnection(errors.length ? 'error' : paused ? 'paused' : 'live', errors.length ? 'errors' : paused ? 'paused' : 'live');
    })();
    try {
      await running;
    } finally {
      running = null;
      if (again) { again = false; refresh(); } else schedule();
    }
  }

  // ---------------------------------------------------------------- actions

  async function act(button, label, call) {
    button.disabled = true;
    banner.action = null;
    try {
      const result = await call();
      if (result && result.found === false) {
        banner.action = `${label}: ${result.message || 'not found'}`;
      } else {
        status(`${label}: ${(result && result.message) || 'done'}`);
        $('action-status').dataset.affected = String(result && typeof result.affected === 'number' ? result.affected : '');
      }
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) askForToken();
      else banner.action = e instanceof ApiError ? e.describe() : `${label}: ${e}`;
    } finally {
      showErrors();
      button.disabled = false;
      await refresh();
    }
  }

  $('destinations-body').addEventListener('click', (e) => {
    const button = e.target.closest('button[data-action]');
    if (!button) return;
    const dest = button.closest('tr').dataset.destination;
    if (button.dataset.action === 'retry-destination') act(button, `Retry ${dest}`, () => api.retryDestination(dest));
    else if (button.dataset.testid === 'resume-button') act(button, `Resume ${dest}`, () => api.resume(dest));
    else act(button, `Suspend ${dest}`, () => api.suspend(dest));
  });

  const dialog = $('delete-dialog');
  let deleting = null;

  $('messages-body').addEventListener('click', (e) => {
    const button = e.target.closest('button[data-action]');
    if (!button) return;
    const id = button.closest('tr').dataset.id;
    switch (button.dataset.action) {
      case 'retry': act(button, `Retry ${id}`, () => api.retryMessage(id)); break;
      case 'hold': act(button, `Hold ${id}`, () => api.hold(id)); break;
      case 'release': act(button, `Release ${id}`, () => api.release(id)); break;
      case 'delete':
        deleting = { id, button };
        setText($('delete-id'), id);
        $('delete-bounce').checked = false;
        dialog.returnValue = '';
        dialog.showModal();
        break;
    }
  });

  dialog.addEventListener('close', () => {
    const target = deleting;
    deleting = null;
    if (!target || dialog.returnValue !== 'delete') {
      if (target && target.button.isConnected) target.button.focus();
      return;
    }
    const bounce = $('delete-bounce').checked;
    act(target.button, `Delete ${target.id}${bounce ? ' with bounce' : ''}`, () => api.deleteMessage(target.id, bounce));
  });

  $('state-filter').addEventListener('change', () => refresh());
  $('chart-window').addEventListener('change', () => refresh());
  $('refresh-button').addEventListener('click', () => refresh());
  $('error-dismiss').addEventListener('click', () => { banner.action = null; banner.refresh = null; showErrors(); });
  $('pause-button').addEventListener('click', (e) => {
    paused = !paused;
    e.currentTarget.setAttribute('aria-pressed', String(paused));
    setText(e.currentTarget, paused ? 'Resume updates' : 'Pause');
    setConnection(paused ? 'paused' : 'live', paused ? 'paused' : 'live');
    if (paused) clearTimeout(timer); else refresh();
  });

  // No polling while the tab is hidden: nothing to see, nothing to spend.
  document.addEventListener('visibilitychange', () => {
    if (document.hidden) clearTimeout(timer);
    else if (!paused && !needToken) refresh();
  });

  takeTokenFromFragment();
  refresh();
})();
