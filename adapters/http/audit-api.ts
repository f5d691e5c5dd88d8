import type { AuditSigner } from '../../src/core/audit-checkpoint.ts';
import { sendJson, type Router } from './router.ts';

// The public keys of the audit checkpoints (AUDIT_SIGNING_KEY and the older keys it still
// lists), for anyone who checks checkpoints: `countersign audit verify --keys`, a SIEM, an
// auditor. Public parts only; unauthenticated like the execution tokens' JWKS.

export function mountAuditApi(signer: Pick<AuditSigner, 'publicJwks'>): (router: Router) => void {
  return (router) => {
    router.on('GET', '/.well-known/audit-keys.json', (ctx) => {
      sendJson(ctx.res, 200, signer.publicJwks(), { 'cache-control': 'public, max-age=300' });
    });
  };
}
