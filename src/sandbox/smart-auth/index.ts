export {
  createSandboxSmart,
  SMART_APP_CLIENT_ID,
  SMART_APP_SCOPES,
  SMART_EHR_LAUNCH_SCOPE,
  SMART_STANDALONE_LAUNCH_SCOPE,
} from './smart-auth.js';
export type { SandboxSmart, SandboxSmartOptions, AccessDecision } from './smart-auth.js';
export type { LaunchContext } from './launch-context.js';
