// The dependency graph of a task drawn as layers, left to right: each task
// after everything it depends on, coloured by its status.
//
// Edges never pass behind a node. Nodes sit in columns with empty gaps
// between them; an edge between neighbouring columns is drawn in the gap.
// An edge that skips columns (a dependency two levels up) gets a place of
// its own in each column it crosses, as if a hidden node stood there, and
// is drawn straight through it: the Sugiyama method's "dummy nodes". The
// order within each column is then improved a few times by the barycentre
// of each entry's neighbours, so that edges cross less.
"use strict";

const Dag = (() => {
  const NS = "http://www.w3.org/2000/svg";
  const NODE_WIDTH = 170, NODE_HEIGHT = 34, COLUMN_GAP = 60, ROW_GAP = 14, MARGIN = 12;
  const SWEEPS = 8;
  // Waiting to be placed (WAITING) reads grey, placed for later (SCHEDULED)
  // pink, ready (PENDING) blue: three states a glance must tell apart.
  const COLORS = {WAITING: "#8b98a5", SCHEDULED: "#db61a2", PENDING: "#58a6ff", RUNNING: "#a371f7",
                  COMPLETED: "#3fb950", FAILED: "#f85149", CANCELLED: "#d29922"};

  function element(name, attributes, text) {
    const node = document.createElementNS(NS, name);
    for (const [key, value] of Object.entries(attributes || {})) node.setAttribute(key, value);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // Longest path from a root, so every edge points rightwards.
  function layers(nodes, edges) {
    const incoming = new Map(nodes.map(n => [n.id, []]));
    for (const [from, to] of edges) if (incoming.has(to) && incoming.has(from)) incoming.get(to).push(from);
    const level = new Map();
    const visiting = new Set();
    function depth(id) {
      if (level.has(id)) return level.get(id);
      if (visiting.has(id)) return 0; // never for a DAG; guards a bad input
      visiting.add(id);
      const value = Math.max(-1, ...incoming.get(id).map(depth)) + 1;
      visiting.delete(id);
      level.set(id, value);
      return value;
    }
    nodes.forEach(n => depth(n.id));
    return level;
  }

  // The tail of an id: UUIDv7s made together share their head (the time).
  function shortId(id) { return id.slice(-6); }

  function label(task) {
    const named = task.name && task.name !== task.task_type;
    const text = named ? task.name : `${task.task_type} ${shortId(task.id)}`;
    return text.length > 24 ? text.slice(0, 23) + "…" : text;
  }

  // Columns of entries (nodes, and one hidden entry per column an edge
  // crosses), each edge cut into steps between neighbouring columns.
  function layout(nodes, edges) {
    const level = layers(nodes, edges);
    const columns = [];
    const entry = new Map();
    const place = (key, column, node) => {
      const item = {key, column, node, up: [], down: []};
      (columns[column] = columns[column] || []).push(item);
      entry.set(key, item);
      return item;
    };
    for (const node of nodes) place(node.id, level.get(node.id), node);
    const routes = [];
    edges.forEach(([from, to], index) => {
      const a = entry.get(from), b = entry.get(to);
      if (!a || !b) return;
      const route = [a];
      for (let column = a.column + 1; column < b.column; column++) {
        route.push(place(`edge${index}:${column}`, column, null));
      }
      route.push(b);
      for (let i = 1; i < route.length; i++) {
        route[i - 1].down.push(route[i]);
        route[i].up.push(route[i - 1]);
      }
      routes.push({from, to, route});
    });
    for (let c = 0; c < columns.length; c++) columns[c] = columns[c] || [];
    columns.forEach(column => column.forEach((item, row) => { item.row = row; }));
    const barycentre = (item, side) => {
      const neighbours = item[side];
      return neighbours.length ? neighbours.reduce((sum, n) => sum + n.row, 0) / neighbours.length : item.row;
    };
    const reorder = (column, side) => {
      column.forEach(item => { item.weight = barycentre(item, side); });
      column.sort((a, b) => a.weight - b.weight || a.row - b.row);
      column.forEach((item, row) => { item.row = row; });
    };
    for (let sweep = 0; sweep < SWEEPS; sweep++) {
      if (sweep % 2 === 0) for (let c = 1; c < columns.length; c++) reorder(columns[c], "up");
      else for (let c = columns.length - 2; c >= 0; c--) reorder(columns[c], "down");
    }
    for (const column of columns) {
      for (const item of column) {
        item.x = MARGIN + item.column * (NODE_WIDTH + COLUMN_GAP);
        item.y = MARGIN + item.row * (NODE_HEIGHT + ROW_GAP);
      }
    }
    const rows = Math.max(1, ...columns.map(column => column.length));
    return {
      routes,
      entries: entry,
      width: MARGIN * 2 + columns.length * NODE_WIDTH + Math.max(0, columns.length - 1) * COLUMN_GAP,
      height: MARGIN * 2 + rows * NODE_HEIGHT + (rows - 1) * ROW_GAP,
    };
  }

  // The path of a route: across each gap as a curve, through each hidden
  // entry as a straight line at its height.
  function routePath(route) {
    const mid = item => item.y + NODE_HEIGHT / 2;
    let x = route[0].x + NODE_WIDTH, y = mid(route[0]);
    let d = `M ${x} ${y}`;
    for (let i = 1; i < route.length; i++) {
      const next = route[i];
      const x2 = next.x, y2 = mid(next);
      const bend = (x2 - x) / 2;
      d += ` C ${x + bend} ${y}, ${x2 - bend} ${y2}, ${x2} ${y2}`;
      x = x2; y = y2;
      if (!next.node) {
        x = next.x + NODE_WIDTH;
        d += ` L ${x} ${y}`;
      }
    }
    return d;
  }

  // nodes: [{id, name, task_type, status}], edges: [[upstreamId, dependentId]]
  function draw(svg, nodes, edges, currentId, onClick) {
    svg.replaceChildren();
    const {routes, entries, width, height} = layout(nodes, edges);
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.style.maxWidth = width + "px";

    const defs = element("defs");
    const marker = element("marker", {id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5,
                                      markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse"});
    marker.append(element("path", {d: "M 0 0 L 10 5 L 0 10 z", fill: "#8b98a5"}));
    defs.append(marker);
    svg.append(defs);

    for (const {from, to, route} of routes) {
      svg.append(element("path", {d: routePath(route), class: "edge", "marker-end": "url(#arrow)",
                                  "data-from": from, "data-to": to}));
    }
    for (const node of nodes) {
      const at = entries.get(node.id);
      const group = element("g", {class: "node" + (node.id === currentId ? " current" : ""),
                                  "data-task-id": node.id, "data-status": node.status,
                                  transform: `translate(${at.x},${at.y})`});
      group.append(element("title", {}, `${node.name || node.task_type} (${node.task_type}) ${node.id}: ${node.status}`));
      group.append(element("rect", {width: NODE_WIDTH, height: NODE_HEIGHT, fill: COLORS[node.status] || "#8b98a5"}));
      group.append(element("text", {x: 8, y: 14}, label(node)));
      group.append(element("text", {x: 8, y: 27}, node.status.toLowerCase()));
      group.addEventListener("click", () => onClick(node.id));
      svg.append(group);
    }
  }

  // Repaints one node after a change, without laying the graph out again.
  function update(svg, task) {
    const group = svg.querySelector(`g.node[data-task-id="${task.id}"]`);
    if (!group) return false;
    group.setAttribute("data-status", task.status);
    group.querySelector("rect").setAttribute("fill", COLORS[task.status] || "#8b98a5");
    group.querySelectorAll("text")[1].textContent = task.status.toLowerCase();
    return true;
  }

  function legend(container) {
    container.replaceChildren();
    for (const [status, color] of Object.entries(COLORS)) {
      const swatch = document.createElement("i");
      swatch.style.background = color;
      swatch.dataset.status = status;
      container.append(swatch, document.createTextNode(status.toLowerCase()));
    }
  }

  return {draw, update, legend, COLORS, NODE_WIDTH, NODE_HEIGHT};
})();
