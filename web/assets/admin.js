// offhook admin UI: signs in with an API token and drives /api/v1/admin. Every
// object type is described once in RESOURCES (its columns and form fields); one
// table, one form and one set of handlers serve them all. Text from the server
// only ever reaches the page through textContent, never as HTML.
'use strict';

const API = '/api/v1/admin';
const TOKEN_KEY = 'offhook-admin-token';
let me = null;

// Field types: text (default), int, bool, list (comma separated), select, password.
const RESOURCES = {
  icons: {
    title: 'Icons', key: 'public_id',
    columns: ['public_id', 'label', 'number', 'enabled', 'allowed_origins', 'opening_hours', 'timezone',
      'max_concurrent_calls', 'calls_per_minute', 'tenant_id'],
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
    ],
    rowActions: [{ label: 'Embed', run: showEmbed }],
  },
  accounts: {
    title: 'Accounts', key: 'id',
    columns: ['username', 'display_name', 'number', 'kind', 'enabled', 'tenant_id'],
    fields: [
      { name: 'tenant', create: true, operator: true, hint: 'tenant name' },
      { name: 'username', create: true },
      { name: 'password', type: 'password', create: true, edit: true, hint: 'at least 8 characters' },
      { name: 'display_name', create: true, edit: true },
      { name: 'number', create: true, edit: true },
      { name: 'kind', type: 'select', options: ['user', 'relay'], create: true },
      { name: 'enabled', type: 'bool', edit: true, initial: true },
    ],
  },
  tenants: {
    title: 'Tenants', key: 'name', operatorWrites: true,
    columns: ['name', 'sip_domain', 'id'],
    fields: [
      { name: 'name', create: true },
      { name: 'sip_domain', create: true, edit: true, hint: 'acme.example' },
    ],
  },
  lines: {
    title: 'Lines', key: 'name', operatorWrites: true,
    columns: ['name', 'state', 'kind', 'device_path', 'relay_id', 'tenant_id'],
    fields: [
      { name: 'name', create: true },
      { name: 'relay', create: true },
      { name: 'tenant', create: true, hint: 'empty: shared pool' },
      { name: 'device_path', create: true, edit: true, hint: '/dev/ttyACM0' },
      { name: 'kind', type: 'select', options: ['modem', 'modem+soundcard', 'emulated'], create: true, edit: true },
      { name: 'state', type: 'select', options: OffhookVocab.lineStates, edit: true },
    ],
  },
  relays: {
    title: 'Relays', key: 'name', operatorOnly: true, operatorWrites: true, noEdit: true,
    columns: ['name', 'state', 'sip_uri', 'last_seen_at'],
    fields: [{ name: 'name', create: true }],
  },
  tokens: {
    title: 'Tokens', key: 'id', noEdit: true,
    columns: ['name', 'tenant_id', 'created_at', 'id'],
    fields: [
      { name: 'name', create: true },
      { name: 'tenant', create: true, operator: true, hint: 'empty: an operator token' },
    ],
    created: (body) => notice(`Token secret (shown once): ${body.secret}`),
  },
};

const TABS = [['board', 'Board'], ['icons'], ['accounts'], ['tenants'], ['lines'], ['relays'], ['calls', 'Calls'], ['tokens']];

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
function notice(text) { view().prepend(el('p', { class: 'notice', role: 'status', text })); }

function cell(value, column) {
  if (value === null || value === undefined) return '–';
  if (Array.isArray(value)) return value.join(', ');
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  if (/_at$/.test(column) && typeof value === 'number') return new Date(value).toISOString().replace('T', ' ').slice(0, 19);
  if (column === 'state') return el('span', { class: `state state-${value}`, text: value });
  return String(value);
}

function table(columns, rows, actions = []) {
  const head = el('tr', {}, ...columns.map((c) => el('th', { text: c.replace(/_/g, ' ') })), ...(actions.length ? [el('th')] : []));
  const body = rows.map((row) => el('tr', {},
    ...columns.map((c) => el('td', {}, cell(row[c], c))),
    ...(actions.length ? [el('td', {}, ...actions.map((a) => el('button', { class: 'small', text: a.label, onclick: () => a.run(row) })))] : [])));
  return el('table', {}, el('thead', {}, head), el('tbody', {}, ...body));
}

function input(field, value) {
  const id = `field-${field.name}`;
  let control;
  if (field.type === 'bool') {
    control = el('input', { id, name: field.name, type: 'checkbox' });
    control.checked = value ?? field.initial ?? false;
  } else if (field.type === 'select') {
    control = el('select', { id, name: field.name }, ...field.options.map((o) => el('option', { value: o, text: o })));
    if (value) control.value = value;
  } else {
    control = el('input', { id, name: field.name, type: field.type === 'password' ? 'password' : 'text', placeholder: field.hint || '' });
    control.value = Array.isArray(value) ? value.join(', ') : (value ?? '');
  }
  return el('label', { for: id }, field.name.replace(/_/g, ' '), control);
}

function readForm(form, fields, editing) {
  const body = {};
  for (const field of fields) {
    const control = form.elements[field.name];
    if (field.type === 'bool') { body[field.name] = control.checked; continue; }
    const text = control.value.trim();
    if (text === '') { if (editing && field.name === 'number') body.number = null; continue; }
    if (field.type === 'int') body[field.name] = /^-?\d+$/.test(text) ? Number(text) : text;
    else if (field.type === 'list') body[field.name] = text.split(/[\s,]+/).filter(Boolean);
    else body[field.name] = text;
  }
  return body;
}

// One list with its create/edit form, for any entry of RESOURCES.
async function showResource(name) {
  const spec = RESOURCES[name];
  const operator = me.role === 'operator';
  const canWrite = operator || !spec.operatorWrites;
  const rows = await api('GET', `/${name}`);
  const root = view();
  root.replaceChildren(el('h2', { text: spec.title }));
  const error = el('div', { class: 'error', role: 'alert' });
  let editing = null;
  const formFields = () => spec.fields.filter((f) => (editing ? f.edit : f.create) && (operator || !f.operator));
  const form = el('form', { class: 'object', 'aria-label': `${spec.title} form` });
  const renderForm = () => {
    const fields = formFields();
    const submit = el('button', { class: 'primary', type: 'submit', text: editing ? `Save ${editing[spec.key]}` : 'Create' });
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
        await api('PATCH', `/${name}/${encodeURIComponent(editing[spec.key])}`, body);
      } else {
        const created = await api('POST', `/${name}`, body);
        await showResource(name);
        if (spec.created) spec.created(created);
        return;
      }
      await showResource(name);
    } catch (err) { error.textContent = err.message; }
  });
  const actions = [...(spec.rowActions || [])];
  if (canWrite && !spec.noEdit) actions.push({ label: 'Edit', run: (row) => { editing = row; renderForm(); form.scrollIntoView(); } });
  if (canWrite) {
    actions.push({ label: 'Delete', run: async (row) => {
      if (!confirm(`Delete ${row[spec.key]}?`)) return;
      try { await api('DELETE', `/${name}/${encodeURIComponent(row[spec.key])}`); await showResource(name); } catch (err) { error.textContent = err.message; }
    } });
  }
  root.append(table(spec.columns, rows, actions));
  if (canWrite) { renderForm(); root.append(el('h3', { text: `New / edit` }), form, error); }
  else root.append(el('p', { class: 'notice', text: 'Read-only for tenant admins: the operator manages these.' }), error);
}

async function showEmbed(icon) {
  const { html } = await api('GET', `/icons/${encodeURIComponent(icon.public_id)}/embed`);
  const old = document.getElementById('embed');
  if (old) old.remove();
  view().append(el('div', { id: 'embed' }, el('h3', { text: `Embed ${icon.public_id}` }), el('pre', { class: 'snippet', text: html })));
}

function chart(hours) {
  const width = 720, height = 140, pad = 20;
  const max = Math.max(1, ...hours.map((h) => h.calls));
  const bar = (width - pad) / hours.length;
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('class', 'chart');
  svg.setAttribute('viewBox', `0 0 ${width} ${height + pad}`);
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', 'calls per hour');
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

// The live board: lines by state and active calls, refreshed every 2 s.
let boardTimer = null;
async function showBoard() {
  const [lines, calls, hours] = await Promise.all([api('GET', '/lines'), api('GET', '/calls'), api('GET', '/stats/calls-per-hour?hours=24')]);
  const board = el('div', { class: 'board', 'aria-label': 'lines' }, ...lines.map((line) =>
    el('div', { class: 'line' }, el('b', { text: line.name }), el('span', { class: `state state-${line.state}`, text: line.state }), el('div', { text: line.kind }))));
  view().replaceChildren(
    el('h2', { text: 'Lines' }), board,
    el('h2', { text: `Active calls (${calls.length})` }),
    table(['started_at', 'number', 'line_id', 'icon_id', 'answered_at', 'call_id'], calls),
    el('h2', { text: 'Calls per hour (last 24 h)' }), chart(hours));
  clearTimeout(boardTimer);
  boardTimer = setTimeout(() => { if (current === 'board') showBoard().catch(() => {}); }, 2000);
}

async function showCalls() {
  const root = view();
  const filters = el('form', { class: 'object', 'aria-label': 'filter' },
    input({ name: 'since', hint: '2026-11-01T00:00' }), input({ name: 'until', hint: '2026-12-01T00:00' }),
    input({ name: 'icon', hint: 'icon public id' }), input({ name: 'cause', hint: 'normal, busy, no-answer…' }),
    el('div', { class: 'actions' }, el('button', { class: 'primary', type: 'submit', text: 'Filter' }),
      el('button', { type: 'button', class: 'small', text: 'Export CSV', onclick: () => exportCsv(query()) })));
  const error = el('div', { class: 'error', role: 'alert' });
  const results = el('div');
  const query = () => {
    const params = new URLSearchParams();
    for (const name of ['since', 'until']) {
      const text = filters.elements[name].value.trim();
      if (text) params.set(name, String(Date.parse(text.endsWith('Z') ? text : `${text}Z`)));
    }
    for (const name of ['icon', 'cause']) { const text = filters.elements[name].value.trim(); if (text) params.set(name, text); }
    return params.toString();
  };
  const load = async () => {
    error.textContent = '';
    try {
      const cdrs = await api('GET', `/cdrs?${query()}`);
      results.replaceChildren(table(['started_at', 'number', 'answered_at', 'ended_at', 'answer_source', 'hangup_cause', 'icon_id', 'call_id'], cdrs));
    } catch (err) { error.textContent = err.message; }
  };
  filters.addEventListener('submit', (event) => { event.preventDefault(); load(); });
  root.replaceChildren(el('h2', { text: 'Call records' }), filters, error, results);
  await load();
}

async function exportCsv(query) {
  const text = await api('GET', `/cdrs.csv?${query}`);
  const link = el('a', { href: URL.createObjectURL(new Blob([text], { type: 'text/csv' })), download: 'cdrs.csv' });
  link.click();
}

let current = 'board';
async function show(tab) {
  current = tab;
  for (const button of document.querySelectorAll('#tabs button')) button.setAttribute('aria-selected', String(button.dataset.tab === tab));
  try {
    if (tab === 'board') await showBoard();
    else if (tab === 'calls') await showCalls();
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
  document.getElementById('who').textContent = me.role === 'operator' ? `operator (${me.token_name})` : `tenant admin of ${me.tenant_id} (${me.token_name})`;
  const tabs = document.getElementById('tabs');
  tabs.replaceChildren(...TABS
    .filter(([name]) => !(RESOURCES[name] && RESOURCES[name].operatorOnly && me.role !== 'operator'))
    .map(([name, title]) => el('button', { role: 'tab', 'data-tab': name, text: title || RESOURCES[name].title, onclick: () => show(name) })));
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
