import { createHmac, createPublicKey } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';

// A local stand-in for the Bot Framework's token service: an OpenID metadata document and a
// JWKS (over real HTTP, like login.botframework.com/v1/.well-known/openidconfiguration), an
// RSA key of its own, and Bot Connector tokens as the channel sends them to a bot — plus the
// forgeries an attacker would try against that bot.

export const BOT_ISSUER = 'https://api.botframework.test';
export const KEY_ID = 'countersign-test-key';

export interface TokenOptions {
  aud?: string;
  iss?: string;
  serviceUrl?: string;
  /** Unix seconds. */
  exp?: number;
  nbf?: number;
  kid?: string;
  /** Sign with a key the issuer does not publish (still under `kid`). */
  stranger?: boolean;
}

export interface BotTokenIssuer {
  /** The `MICROSOFT_BOT_OPENID_METADATA_URL` to point countersign at. */
  metadataUrl: string;
  /** Requests the issuer answered (metadata and keys), by path. */
  requests: string[];
  /** A Bot Connector token for `appId`, valid unless the options say otherwise. */
  token(appId: string, serviceUrl: string, options?: TokenOptions): Promise<string>;
  /** The same claims with `alg: none` (and our kid) and no signature. */
  unsigned(appId: string, serviceUrl: string): string;
  /** HS256 over the claims with the published RSA public key (PEM) as the HMAC secret. */
  keyConfusion(appId: string, serviceUrl: string): string;
  close(): Promise<void>;
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

export async function startBotTokenIssuer(options: { endorsements?: string[] } = {}): Promise<BotTokenIssuer> {
  const pair = await generateKeyPair('RS256', { modulusLength: 2048 });
  const stranger = (await generateKeyPair('RS256', { modulusLength: 2048 })).privateKey;
  // Published as Microsoft publishes its keys: no `alg`, `use: sig`, the channels it may sign for.
  const jwk: JWK & { endorsements: string[] } = {
    ...(await exportJWK(pair.publicKey)),
    kid: KEY_ID,
    use: 'sig',
    endorsements: options.endorsements ?? ['msteams'],
  };
  // The public key as botframework-connector turns a JWK into a PEM (PKCS#1), which is what a
  // key-confusion attacker would feed to HMAC.
  const pem = createPublicKey({ key: jwk as import('node:crypto').JsonWebKey, format: 'jwk' }).export({ type: 'pkcs1', format: 'pem' }).toString();
  const requests: string[] = [];
  let base = '';
  const server: Server = createServer((req, res) => {
    requests.push(req.url ?? '');
    res.setHeader('content-type', 'application/json');
    if (req.url === '/v1/.well-known/openidconfiguration') {
      res.end(JSON.stringify({ issuer: BOT_ISSUER, authorization_endpoint: `${base}/v1/auth`, jwks_uri: `${base}/v1/.well-known/keys`, id_token_signing_alg_values_supported: ['RS256'] }));
    } else if (req.url === '/v1/.well-known/keys') {
      res.end(JSON.stringify({ keys: [jwk] }));
    } else res.writeHead(404).end('{}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  base = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`;

  const claims = (appId: string, serviceUrl: string, o: TokenOptions = {}) => {
    const now = Math.floor(Date.now() / 1000);
    return {
      serviceurl: o.serviceUrl ?? serviceUrl,
      nbf: o.nbf ?? now - 60,
      exp: o.exp ?? now + 3600,
      iss: o.iss ?? BOT_ISSUER,
      aud: o.aud ?? appId,
    };
  };
  return {
    metadataUrl: `${base}/v1/.well-known/openidconfiguration`,
    requests,
    token(appId, serviceUrl, o = {}) {
      const key: CryptoKey = o.stranger === true ? stranger : pair.privateKey;
      return new SignJWT(claims(appId, serviceUrl, o)).setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: o.kid ?? KEY_ID }).sign(key);
    },
    unsigned(appId, serviceUrl) {
      return `${b64({ alg: 'none', typ: 'JWT', kid: KEY_ID })}.${b64(claims(appId, serviceUrl))}.`;
    },
    keyConfusion(appId, serviceUrl) {
      const input = `${b64({ alg: 'HS256', typ: 'JWT', kid: KEY_ID })}.${b64(claims(appId, serviceUrl))}`;
      return `${input}.${createHmac('sha256', pem).update(input).digest('base64url')}`;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
