import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';

// The password goes to PostgreSQL as a SCRAM-SHA-256 verifier, never in plain text: a server
// that logs DDL (log_statement = 'ddl'), pg_stat_statements or an audit extension then records
// only the verifier. PostgreSQL stores a verifier given to CREATE ROLE … PASSWORD as it is.

/** PostgreSQL's own default (scram_iterations). */
const ITERATIONS = 4096;

/**
 * The verifier for `password` (RFC 5802/7677, PostgreSQL's text form). The password must be
 * ASCII without control characters, for which SASLprep changes nothing.
 */
export function scramSha256Verifier(password: string, salt: Buffer = randomBytes(16)): string {
  if (!/^[\x21-\x7e]+$/.test(password)) throw new Error('scramSha256Verifier: the password must be printable ASCII');
  const salted = pbkdf2Sync(password, salt, ITERATIONS, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${ITERATIONS}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}
