// A tiny HTML builder with escaping by default. Every `${}` inside html`` is escaped unless
// it is itself an Html value built here, so agent-supplied text can never become markup:
// forgetting to escape would take deliberate effort (raw()).

export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;' };

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"'`]/g, (c) => ESCAPES[c]!);
}

type Part = Html | string | number | boolean | null | undefined | readonly Part[];

function render(part: Part): string {
  if (part === null || part === undefined || part === false) return '';
  if (part instanceof Html) return part.text;
  if (Array.isArray(part)) return part.map(render).join('');
  return escapeHtml(String(part));
}

export function html(strings: TemplateStringsArray, ...parts: Part[]): Html {
  let out = strings[0] ?? '';
  parts.forEach((part, i) => {
    out += render(part) + (strings[i + 1] ?? '');
  });
  return new Html(out);
}

/** Only for markup built in this module's callers from trusted constants. */
export function raw(text: string): Html {
  return new Html(text);
}

export interface PageOptions {
  title: string;
  /** The signed-in person, shown in the header with a sign-out button. */
  person: string | null;
  csrf: string | null;
  /** Which live updates the page's script subscribes to. */
  live?: 'pending' | 'proposal' | null;
  nav?: 'pending' | 'audit' | 'away' | null;
  /** "You are away until … (bob decides for you)", under the header; absent or null when not away. */
  away?: string | null;
}

export function page(options: PageOptions, body: Html): Html {
  const nav = options.nav ?? null;
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
${options.csrf === null ? '' : html`<meta name="csrf-token" content="${options.csrf}">`}
<title>${options.title} · countersign</title>
<link rel="icon" href="/console/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/console/static/console.css">
<script src="/console/static/console.js" defer></script>
</head>
<body data-live="${options.live ?? ''}">
<header class="top">
  <a class="brand" href="/console">countersign</a>
  ${
    options.person === null
      ? ''
      : html`<nav>
    <a href="/console"${nav === 'pending' ? raw(' aria-current="page"') : ''}>Pending</a>
    <a href="/console/audit"${nav === 'audit' ? raw(' aria-current="page"') : ''}>Audit</a>
    <a href="/console/away"${nav === 'away' ? raw(' aria-current="page"') : ''}>Away</a>
  </nav>
  <form class="who" method="post" action="/console/logout">
    <input type="hidden" name="csrf" value="${options.csrf ?? ''}">
    <span>signed in as <b>${options.person}</b></span>
    <button type="submit" class="link">Sign out</button>
  </form>`
  }
</header>
${options.away ? html`<p class="away-banner" role="status" id="away-banner">${options.away} <a href="/console/away">Change</a></p>` : ''}
<main>
${body}
</main>
</body>
</html>
`;
}
