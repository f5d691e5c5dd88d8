import { z } from 'zod';

// How every environment variable is read, whoever declares it (src/config.ts for the core
// ones, each platform's module for its own): a blank value counts as unset, as an edited
// .env.example leaves it.

export const blankToUndefined = (v: unknown) => (typeof v === 'string' && v.trim() === '' ? undefined : v);
export const optionalString = z.preprocess(blankToUndefined, z.string().trim().optional());
export const optionalHttpUrl = z.preprocess(blankToUndefined, z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional());
