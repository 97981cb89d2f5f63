(function () {
  'use strict';
  var errors = 0;
  window.addEventListener('error', function () {
    errors++;
    document.body.dataset.errors = String(errors);
  });
  var body = document.body;

  // Resolved-policy panels: data in one JSON document (policy.rs), drawn
  // on demand into one section. Elements carry `data-name="p3"`, never a
  // name from the input; every text is set as text, never as markup.
  var data = { s: [], r: [], b: [], p: [] };
  var dataEl = document.getElementById('panel-data');
  if (dataEl) data = JSON.parse(dataEl.textContent);
  var S = data.s;
  var panel = document.getElementById('policy');
  var hint = document.getElementById('policy-hint');
  var none = document.getElementById('policy-none');
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  // Text with `code` spans (the notes name verdict commands).
  function prose(tag, text) {
    var e = el(tag);
    text.split('`').forEach(function (part, i) {
      e.appendChild(i % 2 ? el('code', '', part) : document.createTextNode(part));
    });
    return e;
  }
  // A list of rules: the first few, each with its file:line, then a count.
  function rules(into, list) {
    list[0].forEach(function (ri, i) {
      if (i > 0) into.appendChild(el('br'));
      var r = data.r[ri];
      into.appendChild(document.createTextNode(S[r[0]] + ' '));
      into.appendChild(el('span', 'at', S[r[1]]));
    });
    if (list[1] > 0) {
      into.appendChild(el('br'));
      into.appendChild(prose('span', 'and ' + list[1] +
        ' more rules (`verdict policy` lists them)'));
    }
  }
  function draw(key) {
    var n = /^p\d+$/.test(key) ? Number(key.slice(1)) : -1;
    var p = data.p[n];
    if (!p) return null;
    var sec = el('section', 'policy-view');
    sec.id = 'policy-' + key;
    sec.appendChild(el('h3', '', S[p[0]]));
    if (!p[1]) {
      sec.appendChild(el('p', '', 'Not an endpoint of the input: no policy of its own.'));
      return sec;
    }
    var b = data.b[p[1][1]];
    sec.appendChild(el('p', 'ident', S[p[1][0]]));
    var ul = el('ul', 'modes');
    b.modes.forEach(function (m) {
      var li = el('li');
      li.appendChild(el('b', '', S[m[0]]));
      li.appendChild(document.createTextNode(': ' + S[m[1]]));
      if (m[2][0].length) {
        li.appendChild(document.createTextNode('; selected by '));
        rules(li, m[2]);
      }
      ul.appendChild(li);
    });
    sec.appendChild(ul);
    if (b.note !== null) sec.appendChild(prose('p', S[b.note]));
    if (!b.rows.length) {
      sec.appendChild(el('p', '', 'No entries: no rule names a peer of this endpoint.'));
      return sec;
    }
    var t = el('table', 'policy-table');
    var head = el('tr');
    ['direction', b.note !== null ? 'peers' : 'peer', 'protocol/port', 'decision',
      'rule (file:line)'].forEach(function (h) { head.appendChild(el('th', '', h)); });
    t.appendChild(el('thead')).appendChild(head);
    var tb = t.appendChild(el('tbody'));
    b.rows.forEach(function (row) {
      var tr = el('tr', S[row[0]]);
      for (var i = 1; i < 5; i++) tr.appendChild(el('td', '', S[row[i]]));
      rules(tr.appendChild(el('td')), row[5]);
      tb.appendChild(tr);
    });
    sec.appendChild(t);
    if (b.tail !== null) sec.appendChild(prose('p', S[b.tail]));
    return sec;
  }
  function show(key) {
    var old = panel && panel.querySelector('section.policy-view');
    if (old) old.remove();
    var sec = panel ? draw(key) : null;
    if (sec) panel.appendChild(sec);
    if (hint) hint.hidden = true;
    if (none) none.hidden = !!sec;
    document.querySelectorAll('svg .node').forEach(function (n) {
      n.classList.toggle('selected', n.dataset.name === key);
    });
    body.dataset.shown = sec ? key : '';
  }
  function clickable(el) {
    el.addEventListener('click', function () { show(el.dataset.name); });
    el.addEventListener('keydown', function (e) {
      if (e.key === 'Enter') show(el.dataset.name);
    });
  }
  document.querySelectorAll('[data-name]').forEach(clickable);
  body.dataset.nodes = String(document.querySelectorAll('svg .node').length);
  // At load: the policy of the first entry point's enforcer, else of the
  // first node that has one.
  var first = document.querySelector('svg .node.entry:not([data-name=""])') ||
    document.querySelector('svg .node:not([data-name=""])');
  if (first) show(first.dataset.name);

  // Matrix filters: a row stays when every filter matches (case-insensitive
  // substring of the cell text as shown). Initial values from the page's
  // query string (`report.html?q=api&from=shop/`), so a view can be linked.
  var matrix = document.getElementById('matrix');
  var count = document.getElementById('mf-count');
  var fields = {
    q: document.getElementById('mf-q'),
    from: document.getElementById('mf-from'),
    to: document.getElementById('mf-to'),
    flags: document.getElementById('mf-flags')
  };
  var params = new URLSearchParams(window.location.search);
  Object.keys(fields).forEach(function (k) {
    if (fields[k] && params.has(k)) fields[k].value = params.get(k);
  });
  function norm(s) { return String(s || '').trim().toLowerCase(); }

  // Group members (a grouped matrix, matrix_view.rs): every member node
  // once (`n` names, `k` panel numbers), each group's members as ranges of
  // indices into them (`g`). A group's row lists them when opened; the
  // query string opens one (`report.html?group=G3`).
  var G = { n: [], k: [], g: [] };
  var membersEl = document.getElementById('group-members');
  if (membersEl) G = JSON.parse(membersEl.textContent);
  function members(g) {
    var out = [];
    String(G.g[g] || '').split(',').forEach(function (r) {
      if (r === '') return;
      var ab = r.split('-');
      var a = Number(ab[0]);
      var b = ab.length > 1 ? Number(ab[1]) : a;
      for (var i = a; i <= b; i++) out.push(i);
    });
    return out;
  }
  var lowered = {};
  function memberText(g) {
    if (!(g in lowered)) {
      lowered[g] = members(g).map(function (i) { return norm(G.n[i]); }).join('\n');
    }
    return lowered[g];
  }
  function fill(det) {
    if (det.dataset.filled) return;
    det.dataset.filled = 'true';
    var list = el('div', 'members');
    members(Number(det.dataset.g)).forEach(function (i, j) {
      if (j > 0) list.appendChild(document.createTextNode(', '));
      var span = el('span', '', G.n[i]);
      if (G.k[i] >= 0) {
        span.className = 'clickable';
        span.tabIndex = 0;
        span.dataset.name = 'p' + G.k[i];
        clickable(span);
      }
      list.appendChild(span);
    });
    det.appendChild(list);
  }
  document.querySelectorAll('#matrix-groups details').forEach(function (det) {
    det.addEventListener('toggle', function () { if (det.open) fill(det); });
  });
  var opened = params.has('group') &&
    document.getElementById('group-' + params.get('group'));
  if (opened) {
    var det = opened.querySelector('details');
    det.open = true;
    fill(det);
  }
  // Whether a matrix cell matches `f`: its text as shown, or, for a
  // group, one of its members.
  function cellMatches(cell, text, f) {
    if (f === '' || text.indexOf(f) >= 0) return true;
    return cell.dataset.g !== undefined && memberText(cell.dataset.g).indexOf(f) >= 0;
  }
  function apply() {
    if (!matrix || !matrix.tBodies.length) return;
    var q = norm(fields.q && fields.q.value);
    var from = norm(fields.from && fields.from.value);
    var to = norm(fields.to && fields.to.value);
    var flags = fields.flags ? fields.flags.value : '';
    var rows = matrix.tBodies[0].rows;
    var shown = 0;
    for (var i = 0; i < rows.length; i++) {
      var c = rows[i].cells;
      var text = [];
      for (var j = 0; j < c.length; j++) text.push(norm(c[j].textContent));
      var f = text[3] ? text[3].split(',') : [];
      var ok = (q === '' || text.join('\n').indexOf(q) >= 0 ||
          cellMatches(c[0], '', q) || cellMatches(c[1], '', q)) &&
        cellMatches(c[0], text[0], from) &&
        cellMatches(c[1], text[1], to) &&
        (flags === '' || (flags === 'none' ? f.length === 0 : f.indexOf(flags) >= 0));
      rows[i].hidden = !ok;
      if (ok) shown++;
    }
    if (count) {
      count.textContent = shown + ' of ' + rows.length + ' ' +
        (count.dataset.unit || 'connections') + ' shown';
    }
    body.dataset.matrixShown = String(shown);
  }
  Object.keys(fields).forEach(function (k) {
    if (fields[k]) {
      fields[k].addEventListener('input', apply);
      fields[k].addEventListener('change', apply);
    }
  });
  apply();

  // Layout facts for the browser tests: the page must not scroll sideways.
  body.dataset.scrollWidth = String(document.documentElement.scrollWidth);
  body.dataset.viewportWidth = String(document.documentElement.clientWidth);
  body.dataset.ready = 'true';
})();
