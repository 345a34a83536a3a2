// Line charts in SVG with axes, units and threshold lines: enough for a
// dashboard, small enough to ship inside the binary. Times are UTC, as
// everywhere on the dashboard.
"use strict";

const Charts = (() => {
  const NS = "http://www.w3.org/2000/svg";
  const WIDTH = 640, HEIGHT = 180, RIGHT = 10, TOP = 10, BOTTOM = 24;
  // Width of one character of the axis labels (10px sans-serif), with room.
  const CHAR_WIDTH = 6.2;
  // A peak taller than this many times the usual top is drawn clipped (and
  // said), so one outlier does not flatten the rest of the chart.
  const OUTLIER_FACTOR = 3;

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

  // Seconds as a person reads them: 0.4 ms, 250 ms, 12 s, 10 min, 2 h.
  function formatSeconds(seconds) {
    if (seconds === 0) return "0";
    if (seconds < 1) {
      const ms = seconds * 1000;
      return (ms >= 10 ? Math.round(ms) : +ms.toFixed(ms >= 1 ? 1 : 2)) + " ms";
    }
    if (seconds < 120) return +seconds.toFixed(seconds >= 10 ? 0 : 1) + " s";
    if (seconds < 7200) return +(seconds / 60).toFixed(seconds >= 600 ? 0 : 1) + " min";
    return +(seconds / 3600).toFixed(1) + " h";
  }

  function formatTime(ms, withSeconds) {
    const date = new Date(ms);
    const two = n => n.toString().padStart(2, "0");
    return two(date.getUTCHours()) + ":" + two(date.getUTCMinutes()) + (withSeconds ? ":" + two(date.getUTCSeconds()) : "");
  }

  // The top the axis should reach: the highest value, unless a few peaks
  // stand far above the rest; then the rest's top, the peaks clipped.
  function usualTop(values) {
    const sorted = [...values].sort((a, b) => a - b);
    const highest = sorted[sorted.length - 1];
    const usual = sorted[Math.floor((sorted.length - 1) * 0.9)];
    return usual > 0 && highest > usual * OUTLIER_FACTOR ? usual * 1.5 : highest;
  }

  // series: [{name, color, points: [[timeMs, value|null], ...]}]
  // options: {max (fixed top), since (first time), thresholds: [{value, color, name}],
  //           unit (after each number), format (value -> text, in place of number and unit)}
  function draw(svg, series, options) {
    options = options || {};
    svg.replaceChildren();
    const all = series.flatMap(s => s.points.filter(p => p[1] !== null && p[1] !== undefined));
    const format = options.format || (value => formatNumber(value) + (options.unit || ""));
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
    const highest = Math.max(...all.map(p => p[1]));
    const top = options.max !== undefined ? options.max
      : Math.max(thresholdMax, usualTop(all.map(p => p[1]))) * 1.1 || 1;
    const step = niceStep(top, 4);
    const yMax = Math.ceil(top / step) * step || 1;
    const ticks = [];
    for (let value = 0; value <= yMax + 1e-9; value += step) ticks.push(value);
    // Room on the left for the widest label: none is cut.
    const left = 8 + Math.ceil(Math.max(...ticks.map(value => format(value).length)) * CHAR_WIDTH);
    const plotWidth = WIDTH - left - RIGHT, plotHeight = HEIGHT - TOP - BOTTOM;
    const x = t => left + (t - start) / span * plotWidth;
    const y = v => TOP + plotHeight - Math.min(v, yMax) / yMax * plotHeight;

    for (const value of ticks) {
      svg.append(element("line", {x1: left, x2: WIDTH - RIGHT, y1: y(value), y2: y(value), class: "grid"}));
      svg.append(element("text", {x: left - 6, y: y(value) + 3, "text-anchor": "end", class: "tick"}, format(value)));
    }
    if (highest > yMax) {
      svg.append(element("text", {x: WIDTH - RIGHT, y: TOP + 7, "text-anchor": "end", class: "clipped"},
                         `peaks up to ${format(highest)}, clipped`));
    }
    const timeTicks = 6;
    for (let i = 0; i <= timeTicks; i++) {
      const t = start + span * i / timeTicks;
      const anchor = i === 0 ? "start" : i === timeTicks ? "end" : "middle";
      svg.append(element("text", {x: x(t), y: HEIGHT - 6, "text-anchor": anchor},
                         formatTime(t, span < 10 * 60 * 1000) + (i === timeTicks ? " UTC" : "")));
    }
    for (const threshold of options.thresholds || []) {
      svg.append(element("line", {x1: left, x2: WIDTH - RIGHT, y1: y(threshold.value), y2: y(threshold.value),
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
    let legendX = left + 4;
    for (const s of series) {
      const last = [...s.points].reverse().find(p => p[1] !== null && p[1] !== undefined);
      const label = s.name + (last ? " " + format(last[1]) : "");
      svg.append(element("rect", {x: legendX, y: TOP + 2, width: 10, height: 3, fill: s.color}));
      svg.append(element("text", {x: legendX + 14, y: TOP + 7}, label));
      legendX += 26 + label.length * 6.2;
    }
  }

  return {draw, formatNumber, formatSeconds};
})();
