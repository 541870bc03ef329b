import type { Adapter, AdapterPayload } from 'oidc-provider';

/**
 * oidc-provider storage for the sandbox: process memory, entries dropped at expiry. The sandbox FHIR data
 * lives in memory too, so losing grants and tokens on restart is the intended behaviour (oidc-provider's
 * built-in dev adapter works the same way but warns at every start as if this were production).
 */
export function sandboxMemoryAdapter(): new (name: string) => Adapter {
  // One store per provider instance (tests start several).
  const store = new Map<string, { payload: AdapterPayload; expiresAtMs: number }>();
  const grants = new Map<string, Set<string>>();
  return class SandboxMemoryAdapter implements Adapter {
    constructor(private readonly name: string) {}

    private key(id: string): string {
      return `${this.name}:${id}`;
    }

    async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
      const key = this.key(id);
      store.set(key, { payload, expiresAtMs: Date.now() + expiresIn * 1000 });
      if (payload.grantId) {
        const set = grants.get(payload.grantId) ?? new Set<string>();
        set.add(key);
        grants.set(payload.grantId, set);
      }
      this.prune();
    }

    async find(id: string): Promise<AdapterPayload | undefined> {
      const e = store.get(this.key(id));
      if (!e) return undefined;
      if (e.expiresAtMs <= Date.now()) {
        store.delete(this.key(id));
        return undefined;
      }
      return e.payload;
    }

    async findByUid(uid: string): Promise<AdapterPayload | undefined> {
      for (const [k, e] of store) {
        if (k.startsWith(`${this.name}:`) && e.payload.uid === uid && e.expiresAtMs > Date.now()) return e.payload;
      }
      return undefined;
    }

    async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
      for (const [k, e] of store) {
        if (k.startsWith(`${this.name}:`) && e.payload.userCode === userCode && e.expiresAtMs > Date.now()) return e.payload;
      }
      return undefined;
    }

    async consume(id: string): Promise<void> {
      const e = store.get(this.key(id));
      if (e) e.payload.consumed = Math.floor(Date.now() / 1000);
    }

    async destroy(id: string): Promise<void> {
      store.delete(this.key(id));
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      for (const k of grants.get(grantId) ?? []) store.delete(k);
      grants.delete(grantId);
    }

    private prune(): void {
      if (store.size < 5000) return;
      const now = Date.now();
      for (const [k, e] of store) if (e.expiresAtMs <= now) store.delete(k);
    }
  };
}
