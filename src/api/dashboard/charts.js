// Line charts in SVG with axes, units and threshold lines: enough for a
// dashboard, small enough to ship inside the binary.
"use strict";

const Charts = (() => {
  const NS = "http://www.w3.org/2000/svg";
  const WIDTH = 640, HEIGHT = 180, LEFT = 46, RIGHT = 10, TOP = 10, BOTTOM = 24;

  function element(name, attributes, text) {
    const node = document.createElementNS(NS, name);
    for (const [key, value] of Object.entries(attributes || {})) node.setAttribute(key, value);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // A round step for about `count` ticks up to `max`.
  function niceStep(max, count) {
    const raw = max / count;
    const power = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const factor of [1, 2, 2.5, 5, 10]) if (raw <= factor * power) return factor * power;
    return 10 * power;
  }

  function formatNumber(value) {
    if (value >= 1000) return (value / 1000).toFixed(value >= 10000 ? 0 : 1) + "k";
    if (value >= 10 || value === 0) return String(Math.round(value));
    return value.toFixed(value >= 1 ? 1 : 2);
  }

  function formatTime(ms, withSeconds) {
    const date = new Date(ms);
    const two = n => n.toString().padStart(2, "0");
    return two(date.getHours()) + ":" + two(date.getMinutes()) + (withSeconds ? ":" + two(date.getSeconds()) : "");
  }

  // series: [{name, color, points: [[timeMs, value|null], ...]}]
  // options: {max (fixed top), min time, thresholds: [{value, color, name}], unit}
  function draw(svg, series, options) {
    options = options || {};
    svg.replaceChildren();
    const all = series.flatMap(s => s.points.filter(p => p[1] !== null && p[1] !== undefined));
    const plotWidth = WIDTH - LEFT - RIGHT, plotHeight = HEIGHT - TOP - BOTTOM;
    if (!all.length) {
      svg.append(element("text", {x: WIDTH / 2, y: HEIGHT / 2, "text-anchor": "middle", class: "empty"},
                         options.empty || "no data yet"));
      return;
    }
    const now = Date.now();
    const start = options.since !== undefined ? options.since : Math.min(...all.map(p => p[0]));
    const end = Math.max(now, ...all.map(p => p[0]));
    const span = Math.max(end - start, 1000);
    const thresholdMax = Math.max(0, ...(options.thresholds || []).map(t => t.value));
    const top = options.max !== undefined ? options.max
      : Math.max(thresholdMax, ...all.map(p => p[1])) * 1.1 || 1;
    const step = niceStep(top, 4);
    const yMax = Math.ceil(top / step) * step || 1;
    const x = t => LEFT + (t - start) / span * plotWidth;
    const y = v => TOP + plotHeight - Math.min(v, yMax) / yMax * plotHeight;

    for (let value = 0; value <= yMax + 1e-9; value += step) {
      svg.append(element("line", {x1: LEFT, x2: WIDTH - RIGHT, y1: y(value), y2: y(value), class: "grid"}));
      svg.append(element("text", {x: LEFT - 6, y: y(value) + 3, "text-anchor": "end"},
                         formatNumber(value) + (options.unit || "")));
    }
    const ticks = 6;
    for (let i = 0; i <= ticks; i++) {
      const t = start + span * i / ticks;
      svg.append(element("text", {x: x(t), y: HEIGHT - 6, "text-anchor": i === 0 ? "start" : i === ticks ? "end" : "middle"},
                         formatTime(t, span < 10 * 60 * 1000)));
    }
    for (const threshold of options.thresholds || []) {
      svg.append(element("line", {x1: LEFT, x2: WIDTH - RIGHT, y1: y(threshold.value), y2: y(threshold.value),
                                  class: "threshold", stroke: threshold.color}));
    }
    for (const s of series) {
      let path = "", open = false;
      const points = s.points;
      points.forEach(([t, value], i) => {
        if (value === null || value === undefined) { open = false; return; }
        path += (open ? "L" : "M") + x(t).toFixed(1) + "," + y(value).toFixed(1);
        // A point with no neighbour to join draws as a dot.
        const next = points[i + 1];
        if (!open && (!next || next[1] === null || next[1] === undefined)) {
          svg.append(element("circle", {cx: x(t).toFixed(1), cy: y(value).toFixed(1), r: 2.5, fill: s.color}));
        }
        open = true;
      });
      if (path) svg.append(element("path", {d: path, class: "series", stroke: s.color, "data-series": s.name}));
    }
    // The legend, with the latest value of each series.
    let legendX = LEFT + 4;
    for (const s of series) {
      const last = [...s.points].reverse().find(p => p[1] !== null && p[1] !== undefined);
      const label = s.name + (last ? " " + formatNumber(last[1]) + (options.unit || "") : "");
      svg.append(element("rect", {x: legendX, y: TOP + 2, width: 10, height: 3, fill: s.color}));
      svg.append(element("text", {x: legendX + 14, y: TOP + 7}, label));
      legendX += 26 + label.length * 6.2;
    }
  }

  return {draw, formatNumber};
})();
