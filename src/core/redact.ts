// What reaches the audit log or a chat thread from an executor's or agent's answer: anything that
// looks secret is taken out first. Part of execution.ts (which re-exports it), kept apart for size.

export const EXCERPT_LENGTH = 500;

// Executors and agents echo requests, print stack traces with env dumps, return tokens they
// minted: whatever reaches the audit log or a chat thread loses anything that looks secret.
const REDACTIONS: [RegExp, string][] = [
  [/\b(Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=-]+/gi, '$1 [redacted]'],
  [/\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*/g, '[redacted-jwt]'],
  [
    /((?:api[_-]?key|key|secret|password|passwd|pwd|token|access[_-]?token|client[_-]?secret|authorization)["']?\s*[=:]\s*["']?)[^\s"'&,;}]+/gi,
    '$1[redacted]',
  ],
  [/-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)/g, '[redacted-key]'],
  [/\b[0-9a-fA-F]{32,}\b/g, '[redacted-hex]'],
  [/[A-Za-z0-9+/_-]{32,}={0,2}/g, '[redacted]'],
];

export function redactSecrets(text: string): string {
  let out = text;
  for (const [pattern, replacement] of REDACTIONS) out = out.replace(pattern, replacement);
  return out;
}

/** Redact first, then cut: cutting first could leave half a secret too short to be recognised. */
export function responseExcerpt(text: string): string {
  return redactSecrets(text).slice(0, EXCERPT_LENGTH);
}
