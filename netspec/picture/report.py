"""`netspec report`: one self-contained HTML page about a network.

The page holds the picture (inline SVG), the layer table (click a heading to sort),
the warnings with their source lines, the totals and the spec itself with line
numbers. Clicking a layer in the picture highlights its table rows and spec line,
and clicking a row highlights its layer in the picture. Everything (style, script,
picture) is inline, so the file opens offline from disk.
"""

from __future__ import annotations

from html import escape
from math import prod
from typing import TYPE_CHECKING

from ..kinds import shape_str
from . import draw

if TYPE_CHECKING:
    from ..network import Network

CSS = """
body{font:14px/1.45 "DejaVu Sans",Verdana,Arial,sans-serif;margin:24px;color:#222;background:#fafafa}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.ns-sub{color:#555;margin:0 0 12px}
.ns-picture{overflow:auto;max-height:75vh;background:#fff;border:1px solid #ccc;padding:6px}
table.ns-table{border-collapse:collapse;background:#fff;font-size:13px}
.ns-table th,.ns-table td{border-bottom:1px solid #e2e2e2;padding:3px 10px;text-align:left;white-space:nowrap}
.ns-table th{cursor:pointer;background:#eef1f5;position:sticky;top:0;user-select:none}
.ns-table th[data-dir=asc]::after{content:" ▲"}.ns-table th[data-dir=desc]::after{content:" ▼"}
.ns-table td.ns-num{text-align:right;font-variant-numeric:tabular-nums}
.ns-table tbody tr{cursor:pointer}.ns-table tbody tr:hover{background:#f3f7fb}
.ns-table tfoot td{font-weight:bold;border-top:2px solid #999}
tr.hl{background:#ffe2c2 !important}
.ns-code{background:#fff;border:1px solid #ddd;padding:8px;overflow:auto;font:12px/1.4 "DejaVu Sans Mono",monospace}
.ns-src{display:block;white-space:pre}.ns-src.hl{background:#ffe2c2}
.ns-warn{background:#fff8e6;border-left:4px solid #e0a100}
"""

SCRIPT = """
(function(){
  var nodeOf = {};
  document.querySelectorAll('g.layer').forEach(function(g){
    g.getAttribute('data-layers').split(' ').forEach(function(n){ nodeOf[n] = g; });
  });
  function clear(){ document.querySelectorAll('.hl').forEach(function(e){ e.classList.remove('hl'); }); }
  function mark(id){ var e = document.getElementById(id); if (e) e.classList.add('hl'); return e; }
  document.querySelectorAll('g.layer').forEach(function(g){
    g.addEventListener('click', function(ev){
      ev.preventDefault(); clear(); g.classList.add('hl');
      var first = null;
      g.getAttribute('data-layers').split(' ').forEach(function(n){
        var r = mark('row-' + n); if (r && !first) first = r; });
      mark('L' + g.getAttribute('data-line'));
      if (first) first.scrollIntoView({block: 'nearest'});
    });
  });
  document.querySelectorAll('tr[data-name]').forEach(function(r){
    r.addEventListener('click', function(){
      clear(); r.classList.add('hl');
      var g = nodeOf[r.getAttribute('data-name')];
      mark('L' + r.getAttribute('data-line'));
      if (g){ g.classList.add('hl'); g.scrollIntoView({block: 'nearest', inline: 'nearest'}); }
    });
  });
  document.querySelectorAll('table.ns-table th').forEach(function(th, i){
    th.addEventListener('click', function(){
      var body = th.closest('table').tBodies[0];
      var asc = th.getAttribute('data-dir') !== 'asc';
      th.parentNode.querySelectorAll('th').forEach(function(h){ h.removeAttribute('data-dir'); });
      th.setAttribute('data-dir', asc ? 'asc' : 'desc');
      var rows = Array.prototype.slice.call(body.rows);
      function key(r){ var c = r.cells[i]; return c.hasAttribute('data-v') ? parseFloat(c.getAttribute('data-v')) : c.textContent; }
      rows.sort(function(a, b){
        var x = key(a), y = key(b);
        var c = (typeof x === 'number') ? x - y : String(x).localeCompare(String(y));
        return asc ? c : -c;
      });
      rows.forEach(function(r){ body.appendChild(r); });
    });
  });
})();
"""

_COLUMNS = ("#", "layer", "as written", "line", "output", "activations", "params", "MACs")


def _num(v: int) -> str:
    return f'<td class="ns-num" data-v="{v}">{f"{v:,}" if v else "–"}</td>'


def _table(net: Network) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in _COLUMNS)
    rows = []
    for i, layer in enumerate(net.layers):
        acts = prod(layer.output_shape)
        rows.append(
            f'<tr id="row-{escape(layer.name)}" data-name="{escape(layer.name)}" '
            f'data-line="{layer.line}"><td class="ns-num" data-v="{i}">{i}</td>'
            f"<td>{escape(layer.name)}</td><td>{escape(layer.text)}</td>"
            f'<td class="ns-num" data-v="{layer.line}">{layer.line}</td>'
            f'<td data-v="{acts}">{escape(shape_str(layer.output_shape))}</td>'
            f"{_num(acts)}{_num(layer.params)}{_num(layer.macs)}</tr>")
    foot = (f"<tr><td></td><td>total</td><td></td><td></td>"
            f"<td>{escape(shape_str(net.output_shape))}</td>{_num(net.total_activations)}"
            f"{_num(net.total_params)}{_num(net.total_macs)}</tr>")
    return (f'<table class="ns-table"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}'
            f"</tbody><tfoot>{foot}</tfoot></table>")


def _source(net: Network) -> str:
    lines = net.source.splitlines() or [""]
    width = len(str(len(lines)))
    return "".join(f'<span class="ns-src" id="L{i}">{str(i).rjust(width)} | {escape(text)}</span>'
                   for i, text in enumerate(lines, 1))


def report(net: Network, style: str | None = None, depth: int | None = None) -> str:
    """The report page of `net` as a string (see the module's docstring)."""
    svg = draw(net, style, depth)
    svg = svg[svg.index("<svg"):]   # inline: no XML declaration
    warnings = "".join(f'<pre class="ns-code ns-warn">{escape(w.render())}</pre>'
                       for w in net.warnings) or "<p>No warnings.</p>"
    size = net.total_params * 4 / 2**20
    totals = (f"{net.total_params:,} parameters ({size:,.2f} MiB as float32), "
              f"{net.total_activations:,} activation values and {net.total_macs:,} "
              f"multiply-adds per sample")
    title = f"{net.name}: {shape_str(net.input_shape)} → {shape_str(net.output_shape)}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{escape(title)}</title>
<style>{CSS.strip()}</style></head>
<body>
<h1>{escape(title)}</h1>
<p class="ns-sub">{escape(net.filename or "<stdin>")} · {len(net.layers)} layers · {escape(totals)}</p>
<h2>Picture</h2>
<p class="ns-sub">Click a layer to find its row and spec line; click a row to find its layer.</p>
<div class="ns-picture">{svg}</div>
<h2>Layers</h2>
{_table(net)}
<p><b>Total:</b> {escape(totals)}</p>
<h2>Warnings</h2>
{warnings}
<h2>Spec</h2>
<pre class="ns-code">{_source(net)}</pre>
<script>{SCRIPT.strip()}</script>
</body></html>
"""
