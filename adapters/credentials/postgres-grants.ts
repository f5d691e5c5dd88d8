import { createHash } from 'node:crypto';
import { z } from 'zod';
import { PROPOSAL_ID_PATTERN } from '../../src/core/ids.ts';

// What a `postgres` credentials entry may say, and the role a task's login gets. The grants
// are the only policy text that reaches SQL, so each must be one plain `<privileges> ON
// [<object kind>] <names>` — nothing that could end the statement, quote, comment, add WITH
// GRANT OPTION or grant a role's membership.

const PRIVILEGE = String.raw`(?:SELECT|INSERT|UPDATE|DELETE|TRUNCATE|REFERENCES|TRIGGER|USAGE|CREATE|CONNECT|TEMPORARY|TEMP|EXECUTE|MAINTAIN|ALL(?:\s+PRIVILEGES)?)`;
const OBJECT_KIND = String.raw`(?:TABLE|SEQUENCE|SCHEMA|DATABASE|FUNCTION|PROCEDURE|ROUTINE|ALL\s+(?:TABLES|SEQUENCES|FUNCTIONS|PROCEDURES|ROUTINES)\s+IN\s+SCHEMA)`;
const NAME = String.raw`[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?`;
const GRANT_SHAPE = new RegExp(String.raw`^${PRIVILEGE}(?:\s*,\s*${PRIVILEGE})*\s+ON\s+(?:${OBJECT_KIND}\s+)?${NAME}(?:\s*,\s*${NAME})*$`, 'i');

const MAX_GRANTS = 50;
const MAX_GRANT_LENGTH = 500;

/** Why the grant cannot be used (naming it), or null when it has the allowed shape. */
export function grantProblem(grant: string): string | null {
  const text = grant.trim();
  if (text.length <= MAX_GRANT_LENGTH && GRANT_SHAPE.test(text)) return null;
  // The grant comes from the policy, not from a secret: naming it leaks nothing.
  const shown = text.length > 80 ? `${text.slice(0, 80)}…` : text;
  return `grant "${shown}" is not allowed: write "<privileges> ON [TABLE|SCHEMA|SEQUENCE|DATABASE|FUNCTION|ALL TABLES IN SCHEMA …] <names>" with names of letters, digits, _ and . (no quotes, ;, comments, WITH GRANT OPTION or role memberships)`;
}

/** The grant as it goes into `GRANT … TO role`: checked, whitespace collapsed. */
export function grantClause(grant: string): string {
  return grant.trim().replace(/\s+/g, ' ');
}

const envVariableName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name');

/** The keys of a `kind: postgres` credentials entry (for the policy schema). */
export const postgresCredentialKeys = {
  /** A role allowed CREATE ROLE, GRANT and pg_terminate_backend (pg_signal_backend); read from the environment, never given out. */
  admin_url: z.strictObject({ env: envVariableName }),
  /** The rights of every login made from this entry, e.g. "SELECT, UPDATE ON orders". */
  grant: z
    .array(
      z.string().superRefine((grant, ctx) => {
        const problem = grantProblem(grant);
        if (problem !== null) ctx.addIssue({ code: 'custom', message: problem });
      }),
    )
    .min(1)
    .max(MAX_GRANTS),
  /** How many sessions the login may hold at once. */
  connect_limit: z.number().int().min(1).max(1000).default(2),
  /** The database the grants are in and the login connects to; default: the admin URL's. */
  database: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_-]{0,62}$/, 'must be a database name (letters, digits, _ and -)')
    .optional(),
} satisfies z.ZodRawShape;

export const postgresSettingsSchema = z.object(postgresCredentialKeys);
export type PostgresSettings = z.output<typeof postgresSettingsSchema>;

/** What revoke accepts: only roles countersign makes, never another role. */
export const POSTGRES_HANDLE_PATTERN = /^cs_[a-z0-9_]{1,60}$/;

/**
 * The role for a proposal: `cs_<proposal id>` for countersign's own ids, a hash of the id for
 * anything else, so no outside text reaches the role name, and the same proposal always gets
 * the same role (the ledger can name it before it exists; a retried issue replaces it).
 */
export function postgresRoleFor(proposalId: string): string {
  if (PROPOSAL_ID_PATTERN.test(proposalId)) return `cs_${proposalId}`;
  return `cs_h${createHash('sha256').update(proposalId).digest('hex').slice(0, 32)}`;
}
