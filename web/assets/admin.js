// offhook admin UI: signs in with an API token and drives /api/v1/admin. Every
// object type is described once in RESOURCES (its columns, form fields, row
// actions); one table, one form and one set of handlers serve them all. Views of
// their own: the live board (lines with reset and diagnostics, active calls with
// hang-up, open requests), call records (search, filters, pages, CSV), requests,
// webhook deliveries and the audit log. A delete first asks what it takes with
// it and names that in its confirmation; every change ends with a notice. Text
// from the server only ever reaches the page through textContent, never as HTML.
'use strict';

const API = '/api/v1/admin';
const TOKEN_KEY = 'offhook-admin-token';
const PAGE = 50;
let me = null;
const operator = () => me && me.role === 'operator';

// Field types: text (default), int, bool, list (comma separated), select, checks (several of options), password.
const RESOURCES = {
  icons: {
    title: 'Icons', key: 'public_id', kind: 'icon', impact: true,
    columns: ['public_id', 'label', 'number', 'enabled', 'allowed_origins', 'opening_hours', 'timezone',
      'max_concurrent_calls', 'calls_per_minute', 'ring_timeout_s', 'tenant_id'],
    fields: [
      { name: 'tenant', create: true, operator: true, hint: 'tenant name' },
      { name: 'public_id', create: true, hint: 'generated when empty' },
      { name: 'number', create: true, edit: true, hint: '+4930123456' },
      { name: 'label', create: true, edit: true },
      { name: 'enabled', type: 'bool', create: true, edit: true, initial: true },
      { name: 'allowed_origins', type: 'list', create: true, edit: true, hint: 'https://www.example.com' },
      { name: 'opening_hours', create: true, edit: true, hint: 'mon-fri 09:00-17:00' },
      { name: 'timezone', create: true, edit: true, hint: 'UTC' },
      { name: 'max_concurrent_calls', type: 'int', create: true, edit: true, hint: '2' },
      { name: 'calls_per_minute', type: 'int', create: true, edit: true, hint: '10' },
      { name: 'ring_timeout_s', type: 'int', create: true, edit: true, nullable: true, hint: "empty: the relay's" },
    ],
    rowActions: [{ label: 'Embed', run: showEmbed }],
  },
  accounts: {
    title: 'Accounts', key: 'id', kind: 'account', impact: true, name: 'username',
    columns: ['username', 'display_name', 'number', 'kind', 'enabled', 'tenant_id'],
    fields: [
      { name: 'tenant', create: true, operator: true, hint: 'tenant name' },
      { name: 'username', create: true },
      { name: 'password', type: 'password', create: true, edit: true, hint: 'at least 8 characters' },
      { name: 'display_name', create: true, edit: true },
      { name: 'number', create: true, edit: true, nullable: true },
      { name: 'kind', type: 'select', options: ['user', 'relay'], create: true },
      { name: 'enabled', type: 'bool', edit: true, initial: true },
    ],
  },
  tenants: {
    title: 'Tenants', key: 'name', kind: 'tenant', impact: true, operatorWrites: true,
    columns: ['name', 'sip_domain', 'id'],
    fields: [
      { name: 'name', create: true },
      { name: 'sip_domain', create: true, edit: true, hint: 'acme.example' },
    ],
  },
  lines: {
    title: 'Lines', key: 'name', kind: 'line', impact: true, operatorWrites: true,
    columns: ['name', 'state', 'state_changed_at', 'fault_reason', 'kind', 'device_path', 'relay_id', 'tenant_id'],
    fields: [
      { name: 'name', create: true },
      { name: 'relay', create: true },
      { name: 'tenant', create: true, hint: 'empty: shared pool' },
      { name: 'device_path', create: true, edit: true, hint: '/dev/ttyACM0' },
      { name: 'kind', type: 'select', options: OffhookVocab.lineKinds, create: true, edit: true },
      { name: 'state', type: 'select', options: OffhookVocab.lineStates, edit: true },
    ],
    rowActions: [
      { label: 'Diagnose', operator: true, run: (line) => showDiagnostics(line.name) },
      { label: 'Reset', operator: true, run: (line) => resetLine(line.name) },
    ],
  },
  relays: {
    title: 'Relays', key: 'name', kind: 'relay', impact: true, operatorOnly: true, operatorWrites: true, noEdit: true,
    columns: ['name', 'state', 'last_seen_at', 'sip_uri'],
    fields: [{ name: 'name', create: true }],
  },
  webhooks: {
    title: 'Webhooks', key: 'id', kind: 'webhook', impact: true, name: 'url',
    columns: ['url', 'events', 'enabled', 'description', 'tenant_id', 'id'],
    fields: [
      { name: 'tenant', create: true, operator: true, hint: 'tenant name' },
      { name: 'url', create: true, edit: true, hint: 'https://billing.example/offhook' },
      { name: 'description', create: true, edit: true },
      { name: 'events', type: 'checks', options: ['call.started', 'call.answered', 'call.ended'], initial: ['call.ended'], create: true, edit: true },
      { name: 'enabled', type: 'bool', edit: true, initial: true },
    ],
    rowActions: [
      { label: 'Deliveries', run: (w) => showDeliveries(w.id) },
      { label: 'New secret', run: rotateSecret },
    ],
    created: (body) => showSecret(`Webhook ${body.webhook.url}`, body.secret),
  },
  tokens: {
    title: 'Tokens', key: 'id', kind: 'token', name: 'name', noEdit: true,
    columns: ['name', 'tenant_id', 'created_at', 'id'],
    fields: [
      { name: 'name', create: true },
      { name: 'tenant', create: true, operator: true, hint: 'empty: an operator token' },
    ],
    created: (body) => showSecret(`Token ${body.token.name}`, body.secret),
  },
};

const TABS = [['board', 'Board'], ['calls', 'Call records'], ['icons'], ['accounts'], ['tenants'], ['lines'], ['relays'],
  ['webhooks'], ['requests', 'Requests'], ['audit', 'Audit log'], ['tokens']];

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') node.className = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else if (k === 'text') node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child);
  return node;
}

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY)}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(API + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (response.status === 401) { signOut('The token was refused: sign in again.'); throw new Error('signed out'); }
  if (response.status === 204) return null;
  const type = response.headers.get('content-type') || '';
  const data = type.includes('json') ? await response.json() : await response.text();
  if (!response.ok) throw new Error(data.error || `${response.status} ${response.statusText}`);
  return data;
}

const view = () => document.getElementById('view');

// Notices: success (green) and failure (red) at the top, announced, kept until dismissed.
function notice(text, kind = 'success') {
  const box = el('div', { class: `notice ${kind}`, role: kind === 'failure' ? 'alert' : 'status' },
    el('span', { text }), el('button', { type: 'button', class: 'small', 'aria-label': 'Dismiss', text: '×', onclick: () => box.remove() }));
  document.getElementById('notices').prepend(box);
  return box;
}

function showSecret(what, secret) {
  const box = notice(`${what}: its secret, shown this once: `, 'success');
  box.firstChild.append(el('code', { class: 'secret', text: secret }));
}

const time = (ms) => new Date(ms).toISOString().replace('T', ' ').slice(0, 19);

function cell(value, column) {
  if (value === null || value === undefined || value === '') return '–';
  if (Array.isArray(value)) return value.join(', ');
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  if (/_at$/.test(column) && typeof value === 'number') return time(value);
  if (column === 'state') return el('span', { class: `state state-${value}`, text: value });
  if (column === 'quality') return [value.loss_permille != null ? `loss ${value.loss_permille / 10} %` : null,
    value.jitter_ms != null ? `jitter ${value.jitter_ms} ms` : null, value.rtt_ms != null ? `rtt ${value.rtt_ms} ms` : null]
    .filter(Boolean).join(', ') || '–';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

// A table; `columns` are field names or [title, row => value] pairs.
function table(columns, rows, actions = [], label = '') {
  const spec = columns.map((c) => (Array.isArray(c) ? c : [c.replace(/_/g, ' '), (row) => cell(row[c], c)]));
  const head = el('tr', {}, ...spec.map(([title]) => el('th', { scope: 'col', text: title })),
    ...(actions.length ? [el('th', { scope: 'col', text: 'actions' })] : []));
  const body = rows.map((row) => el('tr', {},
    ...spec.map(([, value]) => el('td', {}, value(row))),
    ...(actions.length ? [el('td', { class: 'actions' }, ...actions.filter((a) => !a.when || a.when(row))
      .map((a) => el('button', { type: 'button', class: 'small', text: a.label, 'aria-label': `${a.label} ${a.name ? a.name(row) : ''}`.trim(), onclick: () => a.run(row) })))] : [])));
  const attrs = label ? { 'aria-label': label } : {};
  // Wide tables scroll sideways: the region takes the keyboard focus for that.
  return el('div', { class: 'scroll', tabindex: '0', role: 'region', 'aria-label': `${label || 'table'}, scrollable` },
    el('table', attrs, el('thead', {}, head), el('tbody', {}, ...body)));
}

function input(field, value) {
  const id = `field-${field.name}`;
  const label = field.name.replace(/_/g, ' ');
  if (field.type === 'checks') {
    const chosen = value || field.initial || [];
    return el('fieldset', { class: 'checks' }, el('legend', { text: label }),
      ...field.options.map((o) => {
        const box = el('input', { type: 'checkbox', name: field.name, value: o, id: `${id}-${o}` });
        box.checked = chosen.includes(o);
        return el('label', { for: `${id}-${o}` }, box, o);
      }));
  }
  let control;
  if (field.type === 'bool') {
    control = el('input', { id, name: field.name, type: 'checkbox' });
    control.checked = value ?? field.initial ?? false;
  } else if (field.type === 'select') {
    control = el('select', { id, name: field.name }, ...field.options.map((o) => el('option', { value: o, text: o || 'any' })));
    if (value) control.value = value;
  } else {
    control = el('input', { id, name: field.name, type: field.type === 'password' ? 'password' : 'text', placeholder: field.hint || '' });
    control.value = Array.isArray(value) ? value.join(', ') : (value ?? '');
  }
  return el('label', { for: id }, label, control);
}

function readForm(form, fields, editing) {
  const body = {};
  for (const field of fields) {
    if (field.type === 'checks') {
      body[field.name] = [...form.querySelectorAll(`input[name="${field.name}"]:checked`)].map((c) => c.value);
      continue;
    }
    const control = form.elements[field.name];
    if (field.type === 'bool') { body[field.name] = control.checked; continue; }
    const text = control.value.trim();
    if (text === '') { if (editing && field.nullable) body[field.name] = null; continue; }
    if (field.type === 'int') body[field.name] = /^-?\d+$/.test(text) ? Number(text) : text;
    else if (field.type === 'list') body[field.name] = text.split(/[\s,]+/).filter(Boolean);
    else body[field.name] = text;
  }
  return body;
}

// The confirmation of a delete: what goes with it, counted by the server first.
function confirmDelete(kind, name, impact) {
  return new Promise((resolve) => {
    const dialog = document.getElementById('confirm');
    const list = (title, items) => (items && items.length
      ? [el('p', { text: title }), el('ul', {}, ...items.map((d) => el('li', { text: `${d.count} ${d.what}` })))] : []);
    const removes = impact ? impact.removes : [];
    const cancel = el('button', { type: 'button', class: 'small', text: 'Cancel', onclick: () => dialog.close('cancel') });
    const go = el('button', { type: 'button', class: 'danger', text: `Delete ${kind} ${name}`, onclick: () => dialog.close('delete') });
    dialog.replaceChildren(
      el('h2', { id: 'confirm-title', text: `Delete ${kind} ${name}?` }),
      ...(removes.length ? list('This also deletes:', removes) : [el('p', { text: 'Nothing else is deleted with it.' })]),
      ...list('These stay, but lose their link to it:', impact && impact.unlinks),
      el('p', { class: 'muted', text: 'This cannot be undone.' }),
      el('div', { class: 'buttons' }, cancel, go));
    dialog.setAttribute('aria-labelledby', 'confirm-title');
    dialog.onclose = () => resolve(dialog.returnValue === 'delete');
    dialog.showModal();
    cancel.focus();
  });
}

const counted = (items) => items.map((d) => `${d.count} ${d.what}`).join(', ');

// One list with its create/edit form, for any entry of RESOURCES.
async function showResource(name) {
  const spec = RESOURCES[name];
  const canWrite = operator() || !spec.operatorWrites;
  const rows = await api('GET', `/${name}`);
  const root = view();
  root.replaceChildren(el('h2', { text: spec.title }));
  const error = el('div', { class: 'error', role: 'alert' });
  let editing = null;
  const formFields = () => spec.fields.filter((f) => (editing ? f.edit : f.create) && (operator() || !f.operator));
  const form = el('form', { class: 'object', 'aria-label': `${spec.title} form` });
  const label = (row) => row[spec.name || spec.key];
  const renderForm = () => {
    const fields = formFields();
    const submit = el('button', { class: 'primary', type: 'submit', text: editing ? `Save ${label(editing)}` : 'Create' });
    const actions = el('div', { class: 'actions' }, submit);
    if (editing) actions.append(el('button', { type: 'button', class: 'small', text: 'Cancel', onclick: () => { editing = null; renderForm(); } }));
    form.replaceChildren(...fields.map((f) => input(f, editing ? editing[f.name] : undefined)), actions);
  };
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.textContent = '';
    try {
      const body = readForm(form, formFields(), editing);
      if (editing) {
        const saved = await api('PATCH', `/${name}/${encodeURIComponent(editing[spec.key])}`, body);
        await showResource(name);
        notice(`Saved ${spec.kind} ${label(saved)}.`);
      } else {
        const created = await api('POST', `/${name}`, body);
        await showResource(name);
        const object = created.webhook || created.token || created;
        notice(`Created ${spec.kind} ${label(object)}.`);
        if (spec.created) spec.created(created);
      }
    } catch (err) { error.textContent = err.message; }
  });
  const actions = (spec.rowActions || []).filter((a) => !a.operator || operator()).map((a) => ({ ...a, name: label }));
  if (canWrite && !spec.noEdit) actions.push({ label: 'Edit', name: label, run: (row) => { editing = row; renderForm(); form.querySelector('input, select').focus(); } });
  if (canWrite) {
    actions.push({ label: 'Delete', name: label, run: async (row) => {
      const key = encodeURIComponent(row[spec.key]);
      try {
        const impact = spec.impact ? await api('GET', `/${name}/${key}/delete-impact`) : null;
        if (!(await confirmDelete(spec.kind, label(row), impact))) return;
        await api('DELETE', `/${name}/${key}`);
        await showResource(name);
        const removed = impact && impact.removes.length ? ` and ${counted(impact.removes)}` : '';
        notice(`Deleted ${spec.kind} ${label(row)}${removed}.`);
      } catch (err) { error.textContent = err.message; }
    } });
  }
  root.append(table(spec.columns, rows, actions, spec.title));
  if (canWrite) { renderForm(); root.append(el('h3', { text: 'New / edit' }), form, error); }
  else root.append(el('p', { class: 'muted', text: 'Read-only for tenant admins: the operator manages these.' }), error);
}

async function showEmbed(icon) {
  const { html } = await api('GET', `/icons/${encodeURIComponent(icon.public_id)}/embed`);
  const old = document.getElementById('embed');
  if (old) old.remove();
  view().append(el('div', { id: 'embed' }, el('h3', { text: `Embed ${icon.public_id}` }), el('pre', { class: 'snippet', text: html })));
}

async function rotateSecret(webhook) {
  try {
    const body = await api('POST', `/webhooks/${encodeURIComponent(webhook.id)}/secret`);
    showSecret(`New secret of webhook ${webhook.url}`, body.secret);
  } catch (err) { notice(err.message, 'failure'); }
}

function describe(action) {
  if (action.result) return `${action.result}${action.detail ? `: ${action.detail}` : ''}`;
  return action.claimed_by ? `being carried out by ${action.claimed_by}` : 'waiting for the node that owns it';
}

async function hangUp(call) {
  try {
    const action = await api('POST', `/calls/${encodeURIComponent(call.id)}/hangup`);
    notice(`Hang-up of the call to ${call.number} requested (${action.id}): ${describe(action)}.`);
    if (current === 'board') await showBoard();
  } catch (err) { notice(err.message, 'failure'); }
}

async function resetLine(name) {
  try {
    const action = await api('POST', `/lines/${encodeURIComponent(name)}/reset`);
    notice(`Reset of line ${name} requested (${action.id}): ${describe(action)}.`);
    if (current === 'board') await showBoard();
  } catch (err) { notice(err.message, 'failure'); }
}

function soundCardFact(c) {
  const ms = (us) => (us / 1000).toFixed(1);
  return `Sound card: plays into ${c.playback}, captures from ${c.capture} at ${c.rate_hz} Hz; ` +
    `device latency ${ms(c.playback_latency_us)} ms out, ${ms(c.capture_latency_us)} ms in; ` +
    `${c.underrun_samples} underrun and ${c.overrun_samples} overrun samples; ` +
    `drift compensation dropped ${c.drift_dropped_samples}, repeated ${c.drift_repeated_samples} samples ` +
    `(as of ${time(c.published_at)})`;
}

async function showDiagnostics(name) {
  try {
    const d = await api('GET', `/lines/${encodeURIComponent(name)}/diagnostics`);
    const old = document.getElementById('diagnostics');
    if (old) old.remove();
    const since = d.line.state_changed_at ? ` since ${time(d.line.state_changed_at)}` : '';
    const facts = [
      `State: ${d.line.state}${since}${d.line.fault_reason ? ` (${d.line.fault_reason})` : ''}`,
      `Relay ${d.relay.name}: ${d.relay.state}, last seen ${d.relay.last_seen_at ? time(d.relay.last_seen_at) : 'never'}`,
      ...d.registrations.map((r) => `Registered from ${r.source} over ${r.transport} via ${r.node} until ${time(r.expires_at)}`),
      d.active_call ? `In call to ${d.active_call.number} since ${time(d.active_call.started_at)}` : 'No call on it now',
      d.last_call ? `Last call ended ${time(d.last_call.ended_at)} (${d.last_call.hangup_cause})` : 'No call ended on it yet',
      ...d.open_actions.map((a) => `Open request ${a.kind}: ${describe(a)}`),
      ...(d.sound_card ? [soundCardFact(d.sound_card)] : []),
    ];
    const section = el('section', { id: 'diagnostics', 'aria-labelledby': 'diagnostics-title' },
      el('h3', { id: 'diagnostics-title', text: `Diagnostics of line ${d.line.name}` }),
      el('ul', {}, ...facts.map((f) => el('li', { text: f }))),
      d.problems.length
        ? el('div', { class: 'notice failure' }, el('ul', {}, ...d.problems.map((p) => el('li', { text: p }))))
        : el('p', { class: 'notice success', text: 'No problem seen.' }));
    view().append(section);
    section.querySelector('h3').setAttribute('tabindex', '-1');
    section.querySelector('h3').focus();
  } catch (err) { notice(err.message, 'failure'); }
}

function chart(hours) {
  const width = 720, height = 140, pad = 20;
  const max = Math.max(1, ...hours.map((h) => h.calls));
  const bar = (width - pad) / hours.length;
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('class', 'chart');
  svg.setAttribute('viewBox', `0 0 ${width} ${height + pad}`);
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', `calls per hour, the most ${max}`);
  hours.forEach((h, i) => {
    const rect = document.createElementNS(svg.namespaceURI, 'rect');
    const tall = (h.calls / max) * height;
    rect.setAttribute('x', pad + i * bar + 1);
    rect.setAttribute('y', height - tall);
    rect.setAttribute('width', Math.max(1, bar - 2));
    rect.setAttribute('height', tall);
    const title = document.createElementNS(svg.namespaceURI, 'title');
    title.textContent = `${new Date(h.hour).toISOString().slice(11, 16)} UTC: ${h.calls} calls`;
    rect.append(title);
    svg.append(rect);
    if (i % 3 === 0) {
      const label = document.createElementNS(svg.namespaceURI, 'text');
      label.setAttribute('x', pad + i * bar);
      label.setAttribute('y', height + 14);
      label.textContent = new Date(h.hour).toISOString().slice(11, 13) + 'h';
      svg.append(label);
    }
  });
  const top = document.createElementNS(svg.namespaceURI, 'text');
  top.setAttribute('x', 0); top.setAttribute('y', 10); top.textContent = String(max);
  svg.append(top);
  return svg;
}

const CALL_COLUMNS = [
  ['started', (c) => time(c.started_at)], ['tenant', (c) => c.tenant_name],
  ['icon', (c) => (c.icon_public_id ? `${c.icon_public_id} (${c.icon_label})` : c.account_username || '–')],
  ['number', (c) => c.number], ['line', (c) => c.line_name || '–'],
];

// The live board: lines by state, active calls, open requests, refreshed every 2 s.
let boardTimer = null;
async function showBoard() {
  const [lines, calls, actions, hours] = await Promise.all([api('GET', '/lines'), api('GET', '/calls'),
    api('GET', '/actions?open=true'), api('GET', '/stats/calls-per-hour?hours=24')]);
  const board = el('div', { class: 'board', role: 'list', 'aria-label': 'lines' }, ...lines.map((line) =>
    el('div', { class: 'line', role: 'listitem' }, el('b', { text: line.name }),
      el('span', { class: `state state-${line.state}`, text: line.state }), el('div', { text: line.kind }),
      ...(line.fault_reason ? [el('div', { class: 'fault', text: line.fault_reason })] : []),
      ...(operator() ? [el('div', { class: 'buttons' },
        el('button', { type: 'button', class: 'small', text: 'Reset', 'aria-label': `Reset ${line.name}`, onclick: () => resetLine(line.name) }),
        el('button', { type: 'button', class: 'small', text: 'Diagnose', 'aria-label': `Diagnose ${line.name}`, onclick: () => showDiagnostics(line.name) }))] : []))));
  const running = [...CALL_COLUMNS, ['answered', (c) => (c.answered_at ? time(c.answered_at) : '–')]];
  // Diagnostics being read stay through the refresh.
  const diagnostics = document.getElementById('diagnostics');
  view().replaceChildren(
    el('h2', { text: 'Lines' }), board,
    el('h2', { text: `Active calls (${calls.length})` }),
    table(running, calls, [{ label: 'Hang up', name: (c) => `call to ${c.number}`, run: hangUp }], 'active calls'),
    el('h2', { text: `Open requests (${actions.total})` }),
    table([['requested', (a) => time(a.requested_at)], ['kind', (a) => a.kind], ['target', (a) => a.target_label],
      ['by', (a) => a.requested_by], ['status', describe]], actions.items, [], 'open requests'),
    el('h2', { text: 'Calls per hour (last 24 h)' }), chart(hours));
  if (diagnostics) view().append(diagnostics);
  clearTimeout(boardTimer);
  boardTimer = setTimeout(() => { if (current === 'board') showBoard().catch(() => {}); }, 2000);
}

// A paged list: `load(offset)` fetches `{items, total}`; renders pager buttons.
function pager(total, offset, size, go) {
  const last = Math.min(offset + size, total);
  return el('nav', { class: 'pager', 'aria-label': 'pages' },
    el('span', { text: total ? `${offset + 1}–${last} of ${total}` : 'none' }),
    el('button', { type: 'button', class: 'small', text: 'Previous page', ...(offset === 0 ? { disabled: '' } : {}), onclick: () => go(Math.max(0, offset - size)) }),
    el('button', { type: 'button', class: 'small', text: 'Next page', ...(last >= total ? { disabled: '' } : {}), onclick: () => go(offset + size) }));
}

async function showCalls() {
  const root = view();
  const filters = el('form', { class: 'object', 'aria-label': 'filter' },
    input({ name: 'q', hint: 'number, call id, tenant, icon…' }),
    input({ name: 'since', hint: '2026-11-01T00:00' }), input({ name: 'until', hint: '2026-12-01T00:00' }),
    input({ name: 'icon', hint: 'icon public id' }), input({ name: 'cause', type: 'select', options: ['', ...OffhookVocab.hangupCauses] }),
    el('div', { class: 'actions' }, el('button', { class: 'primary', type: 'submit', text: 'Search' }),
      el('button', { type: 'button', class: 'small', text: 'Export CSV', onclick: () => exportCsv(query()) })));
  filters.querySelector('label[for="field-q"]').firstChild.textContent = 'search';
  const error = el('div', { class: 'error', role: 'alert' });
  const results = el('div', { 'aria-live': 'polite' });
  const query = () => {
    const params = new URLSearchParams();
    for (const name of ['since', 'until']) {
      const text = filters.elements[name].value.trim();
      if (text) params.set(name, String(Date.parse(text.endsWith('Z') ? text : `${text}Z`)));
    }
    for (const name of ['q', 'icon', 'cause']) { const text = filters.elements[name].value.trim(); if (text) params.set(name, text); }
    return params;
  };
  const columns = [...CALL_COLUMNS,
    ['duration', (c) => (c.duration_s == null ? 'in progress' : `${c.duration_s} s`)],
    ['billable', (c) => (c.billable_s == null ? '–' : `${c.billable_s} s`)],
    ['answer by', (c) => c.answer_source || '–'], ['cause', (c) => c.hangup_cause || '–'],
    ['quality', (c) => cell(c.quality, 'quality')], ['call id', (c) => c.call_id]];
  const load = async (offset) => {
    error.textContent = '';
    try {
      const params = query();
      params.set('limit', String(PAGE));
      params.set('offset', String(offset));
      const page = await api('GET', `/cdrs?${params}`);
      results.replaceChildren(pager(page.total, offset, PAGE, load), table(columns, page.items, [], 'call records'));
    } catch (err) { error.textContent = err.message; }
  };
  filters.addEventListener('submit', (event) => { event.preventDefault(); load(0); });
  root.replaceChildren(el('h2', { text: 'Call records' }), filters, error, results);
  await load(0);
}

async function exportCsv(params) {
  const text = await api('GET', `/cdrs.csv?${params}`);
  const link = el('a', { href: URL.createObjectURL(new Blob([text], { type: 'text/csv' })), download: 'cdrs.csv' });
  link.click();
}

async function showRequests() {
  const page = await api('GET', '/actions?limit=200');
  view().replaceChildren(el('h2', { text: 'Hang-up and reset requests' }),
    el('p', { class: 'muted', text: 'The node that owns a call or line carries a request out; one nobody completes in two minutes ends as expired.' }),
    table([['requested', (a) => time(a.requested_at)], ['kind', (a) => a.kind], ['target', (a) => a.target_label],
      ['by', (a) => a.requested_by], ['status', describe], ['done', (a) => (a.done_at ? time(a.done_at) : '–')]], page.items, [], 'requests'));
}

async function showDeliveries(webhook) {
  const root = view();
  const load = async (offset) => {
    const page = await api('GET', `/deliveries?webhook=${encodeURIComponent(webhook)}&limit=${PAGE}&offset=${offset}`);
    const retry = { label: 'Send again', name: (d) => d.id, when: (d) => d.state !== 'delivered', run: async (d) => {
      try { await api('POST', `/deliveries/${encodeURIComponent(d.id)}/retry`); notice(`Delivery ${d.id} is sent again now.`); await load(offset); }
      catch (err) { notice(err.message, 'failure'); }
    } };
    root.replaceChildren(el('h2', { text: `Deliveries of webhook ${webhook}` }),
      el('button', { type: 'button', class: 'small', text: 'Back to webhooks', onclick: () => show('webhooks') }),
      pager(page.total, offset, PAGE, load),
      table([['event', (d) => d.event], ['call', (d) => d.cdr_id], ['state', (d) => cell(d.state, 'state')],
        ['attempts', (d) => String(d.attempts)], ['next attempt', (d) => (d.state === 'pending' ? time(d.next_attempt_at) : '–')],
        ['last status', (d) => (d.last_status == null ? '–' : String(d.last_status))], ['last error', (d) => d.last_error || '–'],
        ['delivered', (d) => (d.delivered_at ? time(d.delivered_at) : '–')]], page.items, [retry], 'deliveries'));
  };
  await load(0);
}

// A value as text (cell() may give an element).
function plain(value, column) {
  const shown = cell(value, column);
  return typeof shown === 'string' ? shown : shown.textContent;
}

// "label: A → B; enabled: yes → no", or what a delete took along.
function changes(entry) {
  const c = entry.changes || {};
  if (entry.action === 'delete') {
    const removed = (c.removed || []).map((d) => `${d.count} ${d.what}`);
    return removed.length ? `with ${removed.join(', ')}` : '–';
  }
  if (entry.action === 'update') {
    return Object.entries(c).map(([field, v]) => (v && typeof v === 'object' && 'to' in v
      ? `${field}: ${plain(v.from, field)} → ${plain(v.to, field)}` : `${field}: ${plain(v, field)}`)).join('; ') || '–';
  }
  const shown = Object.entries(c).filter(([field]) => !['id', 'created_at', 'tenant_id'].includes(field))
    .map(([field, v]) => `${field}: ${plain(v, field)}`);
  return shown.join('; ') || '–';
}

async function showAudit() {
  const root = view();
  const load = async (offset) => {
    const page = await api('GET', `/audit?limit=${PAGE}&offset=${offset}`);
    root.replaceChildren(el('h2', { text: 'Audit log' }), pager(page.total, offset, PAGE, load),
      table([['when', (e) => time(e.at)], ['who', (e) => e.actor], ['did', (e) => e.action], ['kind', (e) => e.object_kind],
        ['object', (e) => e.object_key], ['changes', changes]], page.items, [], 'audit log'));
  };
  await load(0);
}

let current = 'board';
async function show(tab) {
  current = tab;
  for (const button of document.querySelectorAll('#tabs button')) button.setAttribute('aria-selected', String(button.dataset.tab === tab));
  try {
    if (tab === 'board') await showBoard();
    else if (tab === 'calls') await showCalls();
    else if (tab === 'requests') await showRequests();
    else if (tab === 'audit') await showAudit();
    else await showResource(tab);
  } catch (err) {
    if (err.message !== 'signed out') view().replaceChildren(el('p', { class: 'error', text: err.message }));
  }
}

function signOut(reason) {
  sessionStorage.removeItem(TOKEN_KEY);
  me = null;
  document.getElementById('app').classList.add('hidden');
  document.getElementById('signin').classList.remove('hidden');
  document.getElementById('signin-error').textContent = reason || '';
}

async function signIn(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
  me = await api('GET', '/me');
  document.getElementById('who').textContent = operator() ? `operator (${me.token_name})` : `tenant admin of ${me.tenant_id} (${me.token_name})`;
  const tabs = document.getElementById('tabs');
  tabs.replaceChildren(...TABS
    .filter(([name]) => !(RESOURCES[name] && RESOURCES[name].operatorOnly && !operator()))
    .map(([name, title]) => el('button', { type: 'button', role: 'tab', 'aria-controls': 'view', 'data-tab': name, text: title || RESOURCES[name].title, onclick: () => show(name) })));
  document.getElementById('signin').classList.add('hidden');
  document.getElementById('app').classList.remove('hidden');
  await show('board');
}

document.getElementById('signin-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  try { await signIn(document.getElementById('token').value.trim()); } catch (err) { if (err.message !== 'signed out') signOut(err.message); }
});
document.getElementById('signout').addEventListener('click', () => signOut());
if (sessionStorage.getItem(TOKEN_KEY)) signIn(sessionStorage.getItem(TOKEN_KEY)).catch(() => signOut());
