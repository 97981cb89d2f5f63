(function () {
  'use strict';
  var errors = 0;
  window.addEventListener('error', function () {
    errors++;
    document.body.dataset.errors = String(errors);
  });
  var body = document.body;

  // Resolved-policy panel: one pre-rendered section per endpoint, shown by
  // key (elements carry `data-name="p3"`, never a name from the input).
  var views = {};
  document.querySelectorAll('section.policy-view').forEach(function (s) {
    views[s.id.slice('policy-'.length)] = s;
  });
  var hint = document.getElementById('policy-hint');
  var none = document.getElementById('policy-none');
  function show(key) {
    var found = Object.prototype.hasOwnProperty.call(views, key);
    Object.keys(views).forEach(function (k) {
      views[k].hidden = k !== key;
    });
    if (hint) hint.hidden = true;
    if (none) none.hidden = found;
    document.querySelectorAll('svg .node').forEach(function (n) {
      n.classList.toggle('selected', n.dataset.name === key);
    });
    body.dataset.shown = found ? key : '';
  }
  document.querySelectorAll('[data-name]').forEach(function (el) {
    el.addEventListener('click', function () { show(el.dataset.name); });
    el.addEventListener('keydown', function (e) {
      if (e.key === 'Enter') show(el.dataset.name);
    });
  });
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
      var ok = (q === '' || text.join('\n').indexOf(q) >= 0) &&
        (from === '' || text[0].indexOf(from) >= 0) &&
        (to === '' || text[1].indexOf(to) >= 0) &&
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
