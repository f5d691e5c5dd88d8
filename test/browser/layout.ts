import type { Page } from 'playwright-core';

// What a person sees broken on a small screen, measured in the page: a page wider than the
// screen, a box narrower than its card, text drawn over other text or spilling out of its box.
// The in-page code is a string: a function passed to evaluate() would be serialised after the
// test transform, which may add helpers the page does not have.

export interface LayoutReport {
  viewport: number;
  scrollWidth: number;
  /** "button.approve over textarea" for each pair of boxes that intersect (neither inside the other). */
  overlaps: string[];
  /** Elements whose own content is wider than their box (cut or spilling). */
  spills: string[];
  /** Right edges past the container's. */
  outside: string[];
}

const MEASURE = `(({ container, parts }) => {
  const name = (el) => el.tagName.toLowerCase() + (el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\\s+/).join('.') : '') + (el.textContent ? ' "' + el.textContent.trim().slice(0, 30) + '"' : '');
  // checkVisibility: what is inside a closed <details> still has boxes, but is not drawn.
  const shown = (el) => { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0 && el.checkVisibility({ visibilityProperty: true, opacityProperty: true }); };
  const overlaps = [], spills = [], outside = [];
  for (const box of document.querySelectorAll(container)) {
    const edge = box.getBoundingClientRect().right;
    const els = Array.from(box.querySelectorAll(parts)).filter(shown);
    for (const el of els) {
      const r = el.getBoundingClientRect();
      if (r.right > edge + 1) outside.push(name(el) + ' ends at ' + Math.round(r.right) + ' > ' + Math.round(edge));
      if (el.tagName !== 'TEXTAREA' && el.tagName !== 'PRE' && getComputedStyle(el).overflowX !== 'auto' && el.scrollWidth > el.clientWidth + 1 && el.clientWidth > 0) spills.push(name(el) + ' ' + el.scrollWidth + ' > ' + el.clientWidth);
    }
    for (let i = 0; i < els.length; i++) for (let j = i + 1; j < els.length; j++) {
      const a = els[i], b = els[j];
      if (a.contains(b) || b.contains(a)) continue;
      const p = a.getBoundingClientRect(), q = b.getBoundingClientRect();
      const w = Math.min(p.right, q.right) - Math.max(p.left, q.left), h = Math.min(p.bottom, q.bottom) - Math.max(p.top, q.top);
      if (w > 1 && h > 1) overlaps.push(name(a) + ' over ' + name(b));
    }
  }
  return { viewport: window.innerWidth, scrollWidth: document.documentElement.scrollWidth, overlaps, spills, outside };
})`;

/** The labels, values and buttons of each `container` (a card, a form, an audit entry) on the page. */
export const PARTS = 'h1, h2, h3, .badge, .pick, .target, .who > p, blockquote, pre.params, dt, dd, .rule, .quorum .count, .quorum li, .expiry, .resolution, .note, label, textarea, input:not([type=hidden]), select, button, summary, ol.timeline li, .more, td > *, .hint, p';

export async function measureLayout(page: Page, container: string, parts = PARTS): Promise<LayoutReport> {
  return (await page.evaluate(`${MEASURE}(${JSON.stringify({ container, parts })})`)) as LayoutReport;
}

/** A box's width as a share of its container's (the reason box in its card: at least ~0.8 on a phone). */
export async function widthShare(page: Page, inner: string, outer: string): Promise<number> {
  return (await page.evaluate(`(() => { const i = document.querySelector(${JSON.stringify(inner)}); const o = i && i.closest(${JSON.stringify(outer)}); return i && o ? i.getBoundingClientRect().width / o.getBoundingClientRect().width : 0; })()`)) as number;
}
