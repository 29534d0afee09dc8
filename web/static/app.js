// The live page of ansible-worker: the task list ("/") and a task's page
// ("/tasks/<id>"), kept up to date by server-sent events. Task ids, output
// and every other field come from submitters: they are only ever set as
// text (textContent, text nodes), never parsed as HTML.
'use strict';

(function () {
  // The page's root, from this script's own address, so the page also works
  // behind a proxy that serves it under a path of its own.
  const base = new URL('../', document.currentScript.src);
  const states = ['queued', 'running', 'success', 'failed', 'cancelled', 'timeout'];
  const counts = ['tasks_ok', 'tasks_changed', 'tasks_failed', 'tasks_skipped', 'tasks_unreachable'];
  const maxRows = 500;

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  function setState(span, state) {
    span.textContent = state || '';
    span.className = 'state';
    if (states.includes(state)) span.classList.add('state-' + state);
  }

  function setConn(text, cls) {
    const c = document.getElementById('conn');
    c.textContent = text;
    c.className = 'conn' + (cls ? ' ' + cls : '');
  }

  function formatDuration(seconds) {
    if (typeof seconds !== 'number' || !isFinite(seconds) || seconds < 0) return '';
    if (seconds < 60) return seconds.toFixed(1) + ' s';
    const m = Math.floor(seconds / 60);
    const s = Math.floor(seconds % 60);
    if (m < 60) return m + ' min ' + s + ' s';
    return Math.floor(m / 60) + ' h ' + (m % 60) + ' min';
  }

  function formatTime(ts) {
    if (!ts) return '';
    const d = new Date(ts);
    return isNaN(d) ? '' : d.toLocaleString();
  }

  // duration is the task's duration in seconds: counted up by the page
  // while it runs, as recorded once it has ended.
  function duration(st) {
    if (st.state === 'running' && st.started_at) {
      return (Date.now() - new Date(st.started_at).getTime()) / 1000;
    }
    return st.completed_at ? st.duration_seconds : undefined;
  }

  function taskURL(id) {
    return new URL('tasks/' + encodeURIComponent(id), base).href;
  }

  // The list of tasks, newest first.
  function listPage() {
    const tbody = document.querySelector('#tasks tbody');
    const rows = new Map(); // task id -> {tr, st}

    function sortKey(st) { return (st.created_at || '') + '\u0000' + st.task_id; }

    function cells(st) {
      const tr = el('tr');
      tr.dataset.taskId = st.task_id;
      tr.dataset.state = st.state || '';
      const link = el('a', st.task_id);
      link.href = taskURL(st.task_id);
      const idCell = el('td');
      idCell.append(link);
      const stateCell = el('td');
      const badge = el('span');
      setState(badge, st.state);
      stateCell.append(badge);
      tr.append(idCell, stateCell, el('td', st.playbook, 'playbook'));
      for (const k of counts) tr.append(el('td', st[k], 'num'));
      tr.append(el('td', formatDuration(duration(st)), 'num duration'),
        el('td', st.worker), el('td', st.attempt || '', 'num'), el('td', formatTime(st.created_at)));
      return tr;
    }

    // upsert puts the task's row in place (the list stays newest first)
    // and drops the oldest rows beyond maxRows.
    function upsert(st) {
      if (!st || typeof st.task_id !== 'string') return;
      const old = rows.get(st.task_id);
      if (old) old.tr.remove();
      const tr = cells(st);
      rows.set(st.task_id, {tr: tr, st: st});
      const key = sortKey(st);
      let before = null;
      for (const other of tbody.children) {
        if (sortKey(rows.get(other.dataset.taskId).st) < key) { before = other; break; }
      }
      tbody.insertBefore(tr, before);
      while (tbody.children.length > maxRows) {
        const last = tbody.lastElementChild;
        rows.delete(last.dataset.taskId);
        last.remove();
      }
      document.getElementById('empty').hidden = rows.size > 0;
    }

    const es = new EventSource(new URL('events/tasks', base));
    es.addEventListener('open', () => setConn('live', 'live'));
    es.addEventListener('error', () => setConn('reconnecting…', 'down'));
    es.addEventListener('task', (e) => upsert(JSON.parse(e.data)));
    es.addEventListener('ready', (e) => {
      const d = JSON.parse(e.data);
      document.getElementById('group').textContent = d.group ? 'of group ' + d.group : '';
      document.title = 'ansible-worker: tasks' + (d.group ? ' of ' + d.group : '');
      document.getElementById('summary').textContent = d.total > d.shown
        ? 'The newest ' + d.shown + ' of ' + d.total + ' tasks, and every task from now on.' : '';
    });
    es.addEventListener('problem', (e) => setConn(JSON.parse(e.data).error, 'down'));
    setInterval(() => {
      for (const {tr, st} of rows.values()) {
        if (st.state === 'running') tr.querySelector('.duration').textContent = formatDuration(duration(st));
      }
    }, 1000);
  }

  // The page of one task: its status and its output.
  function taskPage() {
    const id = decodeURIComponent(location.pathname.split('/').pop());
    document.getElementById('task-id').textContent = id;
    document.title = 'ansible-worker: task ' + id;
    const out = document.getElementById('output');
    let lastCounter = 0;
    let current = null;
    let ended = false;

    function fact(dl, name, value) {
      if (value === undefined || value === null || value === '') return;
      dl.append(el('dt', name), el('dd', value));
    }

    function render(st) {
      current = st;
      setState(document.getElementById('state'), st.state);
      const dl = document.getElementById('facts');
      dl.replaceChildren();
      fact(dl, 'Playbook', st.playbook);
      fact(dl, 'Group', st.group);
      fact(dl, 'Worker', st.worker);
      fact(dl, 'Attempt', st.attempt || '');
      fact(dl, 'Created', formatTime(st.created_at));
      fact(dl, 'Started', formatTime(st.started_at));
      fact(dl, 'Completed', formatTime(st.completed_at));
      fact(dl, 'Duration', formatDuration(duration(st)));
      fact(dl, 'Tasks', counts.map((k) => k.slice(6) + ' ' + (st[k] || 0)).join(', ') + ', total ' + (st.tasks_total || 0));
      fact(dl, 'Return code', st.return_code);
      const err = document.getElementById('error');
      err.textContent = st.error_message || '';
      err.hidden = !st.error_message;
      const stats = st.output && Object.keys(st.output).length ? JSON.stringify(st.output, null, 2) : '';
      document.getElementById('stats').textContent = stats;
      document.getElementById('stats-section').hidden = !stats;
    }

    function append(text, cls) {
      const atEnd = out.scrollTop + out.clientHeight >= out.scrollHeight - 4;
      if (cls) out.append(el('span', text + '\n', cls));
      else out.append(text + '\n');
      if (atEnd) out.scrollTop = out.scrollHeight;
    }

    const es = new EventSource(new URL('events/tasks/' + encodeURIComponent(id), base));
    es.addEventListener('open', () => {
      // A new connection replays the task from its start.
      out.replaceChildren();
      lastCounter = 0;
      setConn('live', 'live');
    });
    es.addEventListener('output', (e) => {
      const d = JSON.parse(e.data);
      if (d.counter <= lastCounter) append('--- the task started over ---', 'separator');
      lastCounter = d.counter;
      append(d.stdout);
    });
    es.addEventListener('task', (e) => render(JSON.parse(e.data)));
    es.addEventListener('end', (e) => {
      ended = true;
      es.close();
      render(JSON.parse(e.data));
      setConn('ended');
    });
    es.addEventListener('problem', (e) => setConn(JSON.parse(e.data).error, 'down'));
    es.addEventListener('error', () => {
      if (ended) return;
      setConn(es.readyState === EventSource.CLOSED ? 'the task cannot be followed: reload the page' : 'reconnecting…', 'down');
    });
    setInterval(() => { if (current && current.state === 'running') render(current); }, 1000);
  }

  switch (document.body.dataset.page) {
    case 'tasks': listPage(); break;
    case 'task': taskPage(); break;
  }
})();
