export { createFhirApp } from './app.js';
export type { AccessDecision, FhirApp, FhirAppOptions } from './app.js';
export { startFhirServer } from './start.js';
export type { StartedFhirServer, StartFhirServerOptions } from './start.js';
export { TransactionalMemoryRepository } from './memory-repository.js';
