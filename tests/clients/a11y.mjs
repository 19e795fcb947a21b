// Accessibility checks run in the page: every form control and button
// has an accessible name (a label, aria-label, title or its text), and
// visible text has at least 4.5:1 contrast with what is behind it
// (WCAG 2.2, 1.4.3 and 4.1.2). Returns what fails, one line each.
export async function audit(page) {
  return page.evaluate(() => {
    const problems = [];
    const visible = (e) => e.getClientRects().length > 0 && getComputedStyle(e).visibility !== "hidden";
    for (const c of document.querySelectorAll("input, select, textarea, button")) {
      if (!visible(c) || c.type === "hidden") continue;
      const named = (c.labels && c.labels.length) || c.getAttribute("aria-label") || c.getAttribute("aria-labelledby")
        || c.title || (c.tagName === "BUTTON" && c.textContent.trim());
      if (!named) problems.push(`no name: ${c.outerHTML.slice(0, 80)}`);
    }
    const rgb = (s) => (s.match(/[\d.]+/g) || []).map(Number);
    const lum = ([r, g, b]) => {
      const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
      return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    const behind = (e) => {
      for (let n = e; n; n = n.parentElement) {
        const c = rgb(getComputedStyle(n).backgroundColor);
        if (c.length === 3 || (c.length === 4 && c[3] > 0.5)) return c.slice(0, 3);
      }
      return [255, 255, 255];
    };
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    const seen = new Set();
    for (let t = walker.nextNode(); t; t = walker.nextNode()) {
      const e = t.parentElement;
      if (!t.textContent.trim() || !e || seen.has(e) || !visible(e) || e.closest("[hidden]")) continue;
      seen.add(e);
      const fg = lum(rgb(getComputedStyle(e).color).slice(0, 3));
      const bg = lum(behind(e));
      const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
      if (ratio < 4.5) problems.push(`contrast ${ratio.toFixed(2)}: ${t.textContent.trim().slice(0, 40)}`);
    }
    return problems;
  });
}
