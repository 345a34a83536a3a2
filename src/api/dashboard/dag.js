// The dependency graph of a task drawn as layers, left to right: each task
// after everything it depends on, coloured by its status.
"use strict";

const Dag = (() => {
  const NS = "http://www.w3.org/2000/svg";
  const NODE_WIDTH = 170, NODE_HEIGHT = 34, COLUMN_GAP = 60, ROW_GAP = 14, MARGIN = 12;
  const COLORS = {PENDING: "#58a6ff", SCHEDULED: "#58a6ff", WAITING: "#79c0ff", RUNNING: "#a371f7",
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

  function label(task) {
    const text = task.name && task.name !== task.task_type ? task.name : task.task_type;
    return text.length > 24 ? text.slice(0, 23) + "…" : text;
  }

  // nodes: [{id, name, task_type, status}], edges: [[upstreamId, dependentId]]
  function draw(svg, nodes, edges, currentId, onClick) {
    svg.replaceChildren();
    const level = layers(nodes, edges);
    const columns = [];
    for (const node of nodes) {
      const column = level.get(node.id);
      (columns[column] = columns[column] || []).push(node);
    }
    const position = new Map();
    columns.forEach((column, c) => column.forEach((node, r) => position.set(node.id, {
      x: MARGIN + c * (NODE_WIDTH + COLUMN_GAP),
      y: MARGIN + r * (NODE_HEIGHT + ROW_GAP),
    })));
    const rows = Math.max(1, ...columns.map(column => column.length));
    const width = MARGIN * 2 + columns.length * NODE_WIDTH + Math.max(0, columns.length - 1) * COLUMN_GAP;
    const height = MARGIN * 2 + rows * NODE_HEIGHT + (rows - 1) * ROW_GAP;
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.style.maxWidth = width + "px";

    const defs = element("defs");
    const marker = element("marker", {id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5,
                                      markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse"});
    marker.append(element("path", {d: "M 0 0 L 10 5 L 0 10 z", fill: "#8b98a5"}));
    defs.append(marker);
    svg.append(defs);

    for (const [from, to] of edges) {
      const a = position.get(from), b = position.get(to);
      if (!a || !b) continue;
      const x1 = a.x + NODE_WIDTH, y1 = a.y + NODE_HEIGHT / 2, x2 = b.x, y2 = b.y + NODE_HEIGHT / 2;
      const bend = (x2 - x1) / 2;
      svg.append(element("path", {d: `M ${x1} ${y1} C ${x1 + bend} ${y1}, ${x2 - bend} ${y2}, ${x2} ${y2}`,
                                  class: "edge", "marker-end": "url(#arrow)",
                                  "data-from": from, "data-to": to}));
    }
    for (const node of nodes) {
      const at = position.get(node.id);
      const group = element("g", {class: "node" + (node.id === currentId ? " current" : ""),
                                  "data-task-id": node.id, "data-status": node.status,
                                  transform: `translate(${at.x},${at.y})`});
      group.append(element("title", {}, `${node.task_type} ${node.id}: ${node.status}`));
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
      container.append(swatch, document.createTextNode(status.toLowerCase()));
    }
  }

  return {draw, update, legend};
})();
