// Injected into a copy of a report page (never into the report itself): measures the laid-out page
// appends a pre element (id render-check) holding {problems, counts} as JSON, for the test to read.
(function () {
  "use strict";
  const SLACK = 0.5;  // px: rounding of layout boxes
  const problems = [];
  const counts = {text_nodes: 0, svg_texts: 0, svgs: 0, scroll_boxes: 0};
  const rect = (r) => [r.left, r.top, r.right, r.bottom].map((v) => Math.round(v * 10) / 10);
  const inside = (a, b) => a.left >= b.left - SLACK && a.right <= b.right + SLACK &&
    a.top >= b.top - SLACK && a.bottom <= b.bottom + SLACK;
  const overlap = (a, b) => Math.min(a.right, b.right) - Math.max(a.left, b.left) > SLACK &&
    Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > SLACK;
  const name = (el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
    (el.getAttribute("class") ? "." + el.getAttribute("class").trim().split(/\s+/).join(".") : "");
  const own = (el) => [...el.childNodes].filter((n) => n.nodeType === Node.TEXT_NODE).map((n) => n.data).join("");
  const snippet = (text) => text.trim().replace(/\s+/g, " ").slice(0, 80);
  const report = (kind, el, text, box, container) =>
    problems.push({kind, element: name(el), text: snippet(text), box: rect(box), container: rect(container)});
  const container = (el) => {  // nearest box that is not an inline fragment
    while (el !== document.body && getComputedStyle(el).display === "inline") el = el.parentElement;
    return el;
  };

  document.querySelectorAll("details").forEach((d) => { d.open = true; });  // hidden tables count too
  const root = document.documentElement;
  const page = {left: 0, top: -Infinity, right: root.clientWidth, bottom: Infinity};
  const body = document.body.getBoundingClientRect();
  if (root.scrollWidth > root.clientWidth) report("page scrolls sideways", root, "", root.getBoundingClientRect(), page);

  // 1. boxes that clip or scroll: their content must fit
  for (const el of document.body.querySelectorAll("*")) {
    if (el.closest("svg")) continue;
    const style = getComputedStyle(el);
    if (style.overflowX === "visible" && style.overflowY === "visible") continue;
    counts.scroll_boxes += 1;
    if (el.scrollWidth > el.clientWidth || el.scrollHeight > el.clientHeight) {
      report("content scrolls or is clipped", el, el.textContent, {left: 0, top: 0, right: el.scrollWidth,
        bottom: el.scrollHeight}, {left: 0, top: 0, right: el.clientWidth, bottom: el.clientHeight});
    }
  }

  // 2. every HTML text fragment inside its container, the page body and the window
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (!node.data.trim() || node.parentElement.closest("svg")) continue;
    counts.text_nodes += 1;
    const owner = container(node.parentElement);
    const box = owner.getBoundingClientRect();
    const range = document.createRange();
    range.selectNodeContents(node);
    const fits = (r) => (r.width === 0 && r.height === 0) || (inside(r, box) && inside(r, body) && inside(r, page));
    if ([...range.getClientRects()].every(fits)) continue;
    for (let i = 0; i < node.data.length; i += 1) {  // which characters? (a space hanging at a wrap is no loss)
      if (!node.data[i].trim()) continue;
      range.setStart(node, i);
      range.setEnd(node, i + 1);
      const bad = [...range.getClientRects()].find((r) => !fits(r));
      if (bad) {
        report(inside(bad, box) ? "text outside the page" : "text outside its box", owner,
          node.data.slice(Math.max(0, i - 20)), bad, inside(bad, box) ? body : box);
        break;
      }
    }
  }

  // 3. every chart text inside its chart's viewport, and no two chart texts overlapping
  for (const svg of document.querySelectorAll("svg")) {
    counts.svgs += 1;
    const view = svg.getBoundingClientRect();
    if (!inside(view, body)) report("chart wider than the page", svg, svg.getAttribute("aria-label") || "", view, body);
    const texts = [...svg.querySelectorAll("text")].map((t) => [t, t.getBoundingClientRect()]);
    counts.svg_texts += texts.length;
    texts.forEach(([t, r], i) => {
      if (!inside(r, view)) report("chart text cut at the chart edge", t, own(t), r, view);
      for (const [u, s] of texts.slice(i + 1)) {
        if (overlap(r, s)) report("chart texts overlap", t, own(t) + " / " + own(u), r, s);
      }
    });
  }
  const out = document.createElement("pre");
  out.id = "render-check";
  out.textContent = JSON.stringify({problems, counts});
  document.body.appendChild(out);
})();
