import { createHash } from 'node:crypto';
import { z } from 'zod';
import { PROPOSAL_ID_PATTERN } from '../../src/core/ids.ts';

// What a `redis-acl` credentials entry may say, and the user name a task's login gets. The
// policy's acl string is the only text that reaches ACL SETUSER besides what countersign makes,
// so every rule must match one of a few shapes that grant or withhold rights: nothing that sets
// a password, enables or disables the user, resets it, or opens a selector.

/** A rule that only grants or withholds rights (commands, keys, channels). */
const RULE_SHAPES: readonly RegExp[] = [
  // Key patterns, with optional read/write restriction (Redis 7): ~orders:*, %R~cache:*, %RW~x
  /^(?:%(?:R|W|RW)~|~)[\x21-\x7e]+$/,
  // Pub/sub channel patterns.
  /^&[\x21-\x7e]+$/,
  // Commands and subcommands (module commands have dots): +get, -flushdb, +client|list, +json.get
  /^[+-][A-Za-z][A-Za-z0-9_.-]*(?:\|[A-Za-z0-9_.-]+)?$/,
  // Categories: +@read, -@dangerous
  /^[+-]@[A-Za-z][A-Za-z0-9_-]*$/,
  // Keywords that only widen or narrow rights.
  /^(?:allkeys|allchannels|nocommands|resetkeys|resetchannels)$/i,
];

// Grants that would let the agent outlive its revocation (make a user of its own with ACL,
// rewrite the config, replicate elsewhere): refused whatever the policy says. `allcommands`
// and `+@all` include them, so they are refused too; grant the categories needed instead.
const ESCAPES = /^\+(?:@(?:all|admin|dangerous)|acl(?:\|.*)?|config(?:\|.*)?|module(?:\|.*)?|debug|replicaof|slaveof|failover|sync|psync|shutdown)$/i;

const MAX_RULES = 200;
const MAX_ACL_LENGTH = 4000;

/** Why the acl string cannot be used (naming the rule), or null when every rule is allowed. */
export function aclRulesProblem(acl: string): string | null {
  const rules = splitAclRules(acl);
  if (rules.length === 0) return 'acl names no rules';
  if (rules.length > MAX_RULES) return `acl has more than ${MAX_RULES} rules`;
  for (const rule of rules) {
    if (ESCAPES.test(rule) || /^allcommands$/i.test(rule)) {
      return `acl rule "${rule.slice(0, 60)}" is not allowed: it would let the agent make itself a login that outlives the task (grant the commands or categories it needs instead)`;
    }
    if (!RULE_SHAPES.some((shape) => shape.test(rule))) {
      // The rule comes from the policy, not from a secret, so naming it leaks nothing; it is
      // cut short in case someone pasted something long by mistake.
      const shown = rule.length > 60 ? `${rule.slice(0, 60)}…` : rule;
      return `acl rule "${shown}" is not allowed: use ~pattern, %R~/%W~pattern, &channel, +command, -command, +@category, -@category, allkeys, allchannels, nocommands, resetkeys or resetchannels (passwords, on/off, reset and selectors are countersign's)`;
    }
  }
  return null;
}

/** The acl string's rules, split on whitespace. */
export function splitAclRules(acl: string): string[] {
  return acl.split(/\s+/).filter((r) => r !== '');
}

const envVariableName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name');

/** The keys of a `kind: redis-acl` credentials entry (for the policy schema). */
export const redisAclCredentialKeys = {
  /** A user allowed ACL SETUSER/DELUSER and CLIENT KILL; read from the environment, never given out. */
  admin_url: z.strictObject({ env: envVariableName }),
  /** The rights of every login made from this entry, e.g. "~orders:* +get +set". */
  acl: z
    .string()
    .max(MAX_ACL_LENGTH)
    .superRefine((acl, ctx) => {
      const problem = aclRulesProblem(acl);
      if (problem !== null) ctx.addIssue({ code: 'custom', message: problem });
    }),
} satisfies z.ZodRawShape;

export const redisAclSettingsSchema = z.object(redisAclCredentialKeys);
export type RedisAclSettings = z.output<typeof redisAclSettingsSchema>;

export const REDIS_ACL_HANDLE_PATTERN = /^cs_[a-z0-9_]+$/;

/**
 * The ACL user for a proposal: `cs_<proposal id>` for countersign's own ids, a hash of the id
 * for anything else, so that no outside text reaches the user name and the same proposal always
 * gets the same user (a retried issue replaces the login instead of leaving a second one).
 */
export function redisAclUserFor(proposalId: string): string {
  if (PROPOSAL_ID_PATTERN.test(proposalId)) return `cs_${proposalId}`;
  return `cs_h${createHash('sha256').update(proposalId).digest('hex').slice(0, 32)}`;
}
