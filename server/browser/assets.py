"""The model browser's stylesheet, try-it script and icon: served by this server, so the pages load nothing from
anywhere else (and their Content-Security-Policy can say so: no inline code, no other origin)."""

from __future__ import annotations

STYLESHEET, SCRIPT, ICON = "/assets/zoo.css", "/assets/try.js", "/assets/icon.svg"

CSS = """\
:root { --fg: #1b1f24; --muted: #57606a; --line: #d0d7de; --accent: #0b5cad; --soft: #f6f8fa; --bad: #8a1c1c; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: #fff; }
main, footer { max-width: 64rem; margin: 0 auto; padding: 1rem; }
footer { color: var(--muted); border-top: 1px solid var(--line); font-size: .9rem; }
h1 small { font-weight: normal; color: var(--muted); font-size: .6em; }
h2.inline { display: inline; font-size: 1rem; }
a { color: var(--accent); }
code, pre, textarea { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .9em; }
code { overflow-wrap: anywhere; }
pre { background: var(--soft); padding: .75rem; overflow-x: auto; }
.scroll { overflow-x: auto; margin: 1rem 0; }
table { border-collapse: collapse; min-width: min(24rem, 100%); }
/* A table wider than the window scrolls in its box; its caption stays in view and wraps there. */
caption { text-align: left; font-weight: 600; padding: .25rem 0; position: sticky; left: 0; max-width: calc(100vw - 2rem); }
th, td { text-align: left; padding: .3rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.chosen { font-weight: 600; background: #eef5ee; }
.reason, .error { color: var(--bad); overflow-wrap: anywhere; }
td .reason { display: inline-block; min-width: 14rem; }
.error { font-weight: 600; }
.hint { color: var(--muted); font-size: .9rem; margin: .25rem 0; }
dl.facts { display: grid; grid-template-columns: max-content minmax(0, 1fr); gap: .25rem 1rem; }
dl.facts dt { font-weight: 600; }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
ol.names { margin: .25rem 0; padding-left: 1.75rem; }
article { border-top: 1px solid var(--line); margin-top: 1rem; }
figure { margin: 1rem 0; }
img { max-width: 100%; height: auto; }
.field { margin: .75rem 0; }
.field > label { display: block; font-weight: 600; overflow-wrap: anywhere; }
.features { display: grid; grid-template-columns: repeat(auto-fill, minmax(10rem, 1fr)); gap: .5rem 1rem; }
.features .field { margin: 0; }
input[type=number], textarea { width: 100%; padding: .35rem; font-size: 1rem; }
input[type=range] { width: min(20rem, 65%); vertical-align: middle; }
button { font-size: 1rem; padding: .45rem 1rem; margin: .5rem .5rem .5rem 0; }
meter { width: min(12rem, 35vw); vertical-align: middle; }
@media (max-width: 40rem) {
  main, footer { padding: .75rem; }
  dl.facts { grid-template-columns: minmax(0, 1fr); }
  dl.facts dd { margin-bottom: .5rem; }
}
"""

# The try-it form: a v2 JSON request from the pasted row (or the fields), sent with fetch; the answer is drawn
# with DOM calls and textContent only, so class names from the model's files are never parsed as HTML.
JS = r"""'use strict';
(function () {
  const form = document.getElementById('try');
  if (!form) return;
  const width = Number(form.dataset.features);
  const names = JSON.parse(form.dataset.outputs);  // the contract's output names, from the page
  const classes = JSON.parse(form.dataset.classes);
  const path = form.dataset.infer;
  const needsToken = form.dataset.token === 'required';
  const rowInput = document.getElementById('row');
  const fields = Array.from(form.querySelectorAll('input[data-feature]'));
  const slider = document.getElementById('threshold');
  const shown = document.getElementById('threshold-value');
  const error = document.getElementById('try-error');
  const result = document.getElementById('result');
  const means = document.getElementById('fill-means');
  let answers = 0;

  // Per-class defaults (multilabel) apply, with no threshold sent, until the slider moves; then it sets one for all.
  let perClass = form.dataset.perClass === 'true';
  // The validation curve (when the export chose the threshold on it): scores at the first point at or above the value.
  const curves = form.dataset.curves ? JSON.parse(form.dataset.curves) : null;
  const defaults = JSON.parse(form.dataset.defaultThreshold);
  const stats = document.getElementById('threshold-stats');
  const scoreNames = ['precision', 'recall', 'accuracy', 'coverage'];
  function scoresAt(curve, t) {
    const i = curve.threshold.findIndex((x) => x >= t);
    if (i < 0) return null;
    return scoreNames.filter((k) => k in curve).map((k) => k + ' ' + curve[k][i].toFixed(2)).join(', ');
  }
  function showStats() {
    if (!curves || !stats) return;
    const parts = Object.keys(curves).map((name, i) => {
      const t = perClass ? defaults[i] : Number(slider.value);
      const s = scoresAt(curves[name], t);
      return name + ': ' + (s === null ? 'no validation row reaches this threshold' : s);
    });
    stats.textContent = form.dataset.statsPrefix + parts.join('; ') + '.';
    stats.dataset.threshold = perClass ? 'per class' : slider.value;  // tells a test which value the text is for
  }
  const showThreshold = () => { shown.value = perClass ? 'per class' : Number(slider.value).toFixed(2); showStats(); };
  slider.addEventListener('input', () => { perClass = false; showThreshold(); });
  showThreshold();
  if (means) {
    means.addEventListener('click', () => { for (const f of fields) if (f.value === '') f.value = f.placeholder; });
  }

  function number(text, what) {
    const value = Number(text.trim());
    if (text.trim() === '' || !Number.isFinite(value)) throw new Error(what + ': ' + JSON.stringify(text.trim()) + ' is not a number');
    return value;
  }

  function row() {
    const text = rowInput.value.trim();
    if (text !== '') {
      const parts = text.split(/\s*[,;\t]\s*|\s+/);
      if (parts.length !== width) {
        throw new Error('the pasted row has ' + parts.length + ' values; this model takes ' + width + ', one per feature in order');
      }
      return parts.map((p, i) => number(p, 'value ' + (i + 1)));
    }
    return fields.map((f) => {
      const name = f.labels[0].textContent;
      if (f.value.trim() === '') throw new Error(name + ': enter a number, or paste a whole row');
      return number(f.value, name);
    });
  }

  const quote = (s) => "'" + s.replace(/'/g, "'\\''") + "'";

  function curl(url, body) {
    const parts = ['curl -sS -X POST ' + quote(url), "-H 'Content-Type: application/json'"];
    if (needsToken) parts.push('-H "Authorization: Bearer $ZOO_AUTH_TOKEN"');
    parts.push('-d ' + quote(body));
    return parts.join(' \\\n  ');
  }

  function cell(tag, ...children) {
    const el = document.createElement(tag);
    el.append(...children);
    return el;
  }

  function show(answer) {
    const out = {};
    for (const o of answer.outputs) out[o.name] = o.data;
    const p = out[names.probabilities], oneHot = out[names.one_hot], label = out[names.label][0];
    const rows = classes.map((name, i) => {
      const th = cell('th', name);
      th.scope = 'row';
      const meter = document.createElement('meter');
      meter.min = 0;
      meter.max = 1;
      meter.value = p[i];
      meter.dataset.probability = String(p[i]);
      const percent = (100 * p[i]).toFixed(2) + ' %';
      meter.textContent = percent;
      const set = cell('td', oneHot[i] ? '1' : '0');
      set.dataset.oneHot = String(oneHot[i]);
      return cell('tr', th, cell('td', meter, ' ', percent), set);
    });
    document.getElementById('probabilities').replaceChildren(...rows);
    const shownLabel = document.getElementById('label');
    shownLabel.textContent = label >= 0 ? classes[label] : 'no class (the top probability is below the threshold)';
    shownLabel.dataset.label = String(label);
  }

  function fail(message) {
    // The previous answer goes: next to an error it would read as the answer to this request.
    result.hidden = true;
    document.getElementById('probabilities').replaceChildren();
    document.getElementById('label').textContent = '';
    document.getElementById('curl').textContent = '';
    error.textContent = message;
    error.hidden = false;
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.hidden = true;
    let x;
    try {
      x = row();
    } catch (e) {
      fail(e.message);
      return;
    }
    const input = {name: form.dataset.input, datatype: form.dataset.datatype, shape: [1, width], data: x};
    const parameters = perClass ? {} : {[form.dataset.thresholdParam]: Number(slider.value)};
    const body = JSON.stringify({inputs: [input], parameters});
    const url = new URL(path, window.location.href).href;
    form.setAttribute('aria-busy', 'true');
    try {
      const response = await fetch(url, {method: 'POST', headers: {'Content-Type': 'application/json'}, body});
      const answer = await response.json();
      if (!response.ok) throw new Error(answer.error || 'HTTP ' + response.status);
      show(answer);
      document.getElementById('curl').textContent = curl(url, body);
      result.hidden = false;
      result.scrollIntoView({block: 'nearest'});  // below hundreds of fields, the answer would be out of sight
      answers += 1;
      result.dataset.answers = String(answers);  // tells a waiting reader (and a test) that this answer is drawn
    } catch (e) {
      fail(e.message);
    } finally {
      form.removeAttribute('aria-busy');
    }
  });
})();
"""

# The monitoring section redraws itself from monitor.json every few seconds (no reload), with textContent only.
JS += r"""
(function () {
  const section = document.getElementById('monitor');
  if (!section) return;
  const url = section.dataset.monitor;
  const every = Number(section.dataset.refreshMs);
  let refreshes = 0;

  function row(cells) {
    const tr = document.createElement('tr');
    cells.forEach(([text, numeric], i) => {
      const cell = document.createElement(i === 0 ? 'th' : 'td');
      if (i === 0) cell.scope = 'row';
      if (numeric) cell.className = 'num';
      cell.textContent = text;
      tr.append(cell);
    });
    return tr;
  }
  const percent = (v) => (100 * v).toFixed(1) + ' %';

  async function refresh() {
    try {
      const response = await fetch(url, {cache: 'no-store'});
      if (!response.ok) return;  // a version that unloaded: the next page view says why
      const data = await response.json();
      document.getElementById('monitor-summary').textContent = data.rows
        ? data.rows.toLocaleString('en') + ' rows answered since this version loaded; the figures cover the last '
          + data.window_rows.toLocaleString('en') + '.'
        : 'No request answered since this version loaded.';
      document.getElementById('monitor-note').textContent = data.note;
      document.getElementById('drift-rows').replaceChildren(...data.features.map((f) => row([
        [f.feature], [f.verdict], [f.psi.toFixed(3), true], [f.out_of_range.toLocaleString('en'), true]])));
      document.getElementById('label-rows').replaceChildren(...data.labels.map((x) => row([
        [x.label], [percent(x.served), true], [x.training === null ? '—' : percent(x.training), true]])));
      refreshes += 1;
      section.dataset.refreshes = String(refreshes);  // tells a test that a redraw happened
    } catch (e) {
      // the server went away for a moment: try again at the next tick
    }
  }
  setInterval(refresh, every);
})();
"""

SVG = """<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#0b5cad"/>\
<path d="M4 4h8L4 12h8" stroke="#fff" stroke-width="2" fill="none"/></svg>"""

# path -> (body, content type)
ASSETS: dict[str, tuple[bytes, str]] = {
    STYLESHEET: (CSS.encode(), "text/css"),
    SCRIPT: (JS.encode(), "text/javascript"),
    ICON: (SVG.encode(), "image/svg+xml"),
}
