"""A static HTML review page per recording: waveform, tiers, click to play, confidence colours.

    write_review(transcript, Path("out/tr/a.html"), media=Path("field/a.wav"), peaks=waveform_peaks(rec))

One self-contained file, no server and no network: the transcript and a waveform envelope
(:func:`waveform_peaks`, 20 values a second) are embedded as JSON, the recording is an ``<audio>``
element pointing at the media file by its path relative to the page. Linguists check machine
output by ear: clicking a chunk, word or phone plays exactly that stretch; the colour of an item
is its confidence (red 0 -> green 1). The view shows ``10 s`` at first; the slider scrolls, the
buttons zoom. ``#selftest`` in the URL clicks the first chunk once the audio's metadata is loaded; a click
writes the audio element's position after the seek into ``<body data-seek=...>`` (what the
headless-browser test reads).
"""

from __future__ import annotations

import html
import json
import math
import os
from pathlib import Path

import numpy as np

from wav2vec_u.audio.io import SAMPLE_RATE
from wav2vec_u.io import atomic_write_text
from wav2vec_u.transcribe.exports import tiers_of

PEAKS_PER_SECOND = 20


def waveform_peaks(rec, per_second: int = PEAKS_PER_SECOND, block_s: float = 60.0) -> list[int]:
    """Peak |amplitude| per 1/``per_second`` s as 0-100, read block by block (never the whole file)."""
    bucket = SAMPLE_RATE // per_second
    unit = math.lcm(bucket, rec.step)  # blocks on the read grid and whole buckets
    block = max(unit, int(block_s * SAMPLE_RATE) // unit * unit)
    out: list[int] = []
    for a, b in rec.blocks(block):
        x = np.abs(rec.read(a, b))
        n = -(-len(x) // bucket)
        x = np.pad(x, (0, n * bucket - len(x)))
        out += np.minimum(100, np.round(100 * x.reshape(n, bucket).max(axis=1))).astype(int).tolist()
    return out


def _items(items) -> list[list]:
    return [[x.start, x.end, x.label, None if math.isnan(x.confidence) else x.confidence] for x in items]


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>%(title)s</title>
<style>
body{font-family:sans-serif;margin:12px;background:#fafafa}
#wave{width:100%%;height:90px;background:#fff;border:1px solid #ccc;display:block}
.tier{position:relative;height:34px;border:1px solid #ddd;border-top:none;background:#fff;overflow:hidden}
.name{font-size:12px;color:#555;margin-top:6px}
.item{position:absolute;top:2px;bottom:2px;border:1px solid #666;border-radius:3px;font-size:12px;
      overflow:hidden;white-space:nowrap;cursor:pointer;padding:0 2px;box-sizing:border-box}
.item.playing{outline:2px solid #06c}
#controls{margin:8px 0}
</style></head>
<body>
<h3>%(title)s</h3>
<audio id="audio" controls preload="metadata" src="%(media)s"></audio>
<div id="controls"><button id="zin">zoom in</button> <button id="zout">zoom out</button>
<input id="scroll" type="range" min="0" max="1000" value="0" style="width:60%%">
<span id="where"></span></div>
<canvas id="wave" width="1200" height="90"></canvas>
<div id="tiers"></div>
<script id="data" type="application/json">%(data)s</script>
<script>
const D = JSON.parse(document.getElementById('data').textContent);
const audio = document.getElementById('audio');
let view = Math.min(10, D.duration), start = 0, stopAt = null;
const tiersDiv = document.getElementById('tiers');
const tierNames = Object.keys(D.tiers);
for (const name of tierNames) {
  const label = document.createElement('div'); label.className = 'name'; label.textContent = name;
  const t = document.createElement('div'); t.className = 'tier'; t.id = 'tier-' + name; t.dataset.tier = name;
  tiersDiv.appendChild(label); tiersDiv.appendChild(t);
}
function colour(c) { return c === null ? '#eee' : 'hsl(' + Math.round(120 * c) + ',70%%,80%%)'; }
function play(s, e, el) {
  document.querySelectorAll('.playing').forEach(x => x.classList.remove('playing'));
  if (el) el.classList.add('playing');
  audio.currentTime = s; stopAt = e;
  document.body.dataset.seek = audio.currentTime.toFixed(3);
  const p = audio.play(); if (p) p.catch(() => {});
}
audio.addEventListener('timeupdate', () => { if (stopAt !== null && audio.currentTime >= stopAt) { audio.pause(); stopAt = null; } });
function draw() {
  const c = document.getElementById('wave'); c.width = c.clientWidth || 1200;
  const g = c.getContext('2d'); g.clearRect(0, 0, c.width, c.height); g.fillStyle = '#4a6fa5';
  const pps = D.peaks_per_second, w = c.width, mid = c.height / 2;
  for (let x = 0; x < w; x++) {
    const a = Math.floor((start + x / w * view) * pps), b = Math.max(a + 1, Math.floor((start + (x + 1) / w * view) * pps));
    let m = 0; for (let i = a; i < b && i < D.peaks.length; i++) m = Math.max(m, D.peaks[i]);
    const h = m / 100 * mid; g.fillRect(x, mid - h, 1, 2 * h + 1);
  }
  for (const name of tierNames) {
    const t = document.getElementById('tier-' + name); t.innerHTML = '';
    for (const [s, e, lab, conf] of D.tiers[name]) {
      if (e < start || s > start + view) continue;
      const el = document.createElement('div'); el.className = 'item';
      el.style.left = (100 * (s - start) / view) + '%%'; el.style.width = (100 * (e - s) / view) + '%%';
      el.style.background = colour(conf); el.textContent = lab;
      el.title = lab + '  ' + s.toFixed(3) + '-' + e.toFixed(3) + ' s' + (conf === null ? '' : '  confidence ' + conf.toFixed(2));
      el.dataset.start = s; el.dataset.end = e;
      el.addEventListener('click', () => play(s, e, el));
      t.appendChild(el);
    }
  }
  document.getElementById('where').textContent = start.toFixed(1) + '-' + (start + view).toFixed(1) + ' s of ' + D.duration.toFixed(1) + ' s';
}
document.getElementById('scroll').addEventListener('input', ev => { start = (D.duration - view) * ev.target.value / 1000; draw(); });
document.getElementById('zin').addEventListener('click', () => { view = Math.max(1, view / 2); draw(); });
document.getElementById('zout').addEventListener('click', () => { view = Math.min(D.duration, view * 2); start = Math.min(start, D.duration - view); draw(); });
window.addEventListener('resize', draw);
draw();
document.body.dataset.ready = '1';
function selftest() {
  const first = document.querySelector('#tier-chunks .item');
  if (first) first.dispatchEvent(new MouseEvent('click', {bubbles: true}));
}
if (location.hash === '#selftest') {
  if (audio.readyState >= 1) selftest(); else audio.addEventListener('loadedmetadata', selftest, {once: true});
}
</script></body></html>
"""


def write_review(tr, path: Path, media: Path, peaks: list[int]) -> Path:
    """``path`` (``NAME.html``): the page for transcript ``tr`` of ``media`` (module docstring)."""

    data = {"duration": tr.duration, "peaks_per_second": PEAKS_PER_SECOND, "peaks": peaks,
            "tiers": {name: _items(items) for name, items in tiers_of(tr).items()}}
    rel = os.path.relpath(Path(media).resolve(), Path(path).parent.resolve())
    text = PAGE % {"title": html.escape(Path(media).name), "media": html.escape(Path(rel).as_posix(), quote=True),
                   # "</" inside a script element would end it: JSON allows "<\\/"
                   "data": json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")}
    return atomic_write_text(path, text)
