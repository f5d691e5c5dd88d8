import { channelBindingStoreContract } from '../contracts/channel-binding-store.contract.ts';
import { createMemoryChannelBindingStore } from '../helpers/memory/channel-bindings.ts';

// The in-memory fake keeps the same contract as the Redis store (test/integration/channel-bindings.redis.test.ts).
channelBindingStoreContract(() => createMemoryChannelBindingStore());
