/** The app's SMART registration: must match src/sandbox/smart-auth.ts (SMART_APP_CLIENT_ID, scopes) and
 * the registration at a real EHR. Kept as literals so the browser bundle does not pull the server code. */
export const CLIENT_ID = 'vbmd-smart-app';
const DATA_SCOPES = 'openid fhirUser patient/Observation.rs patient/RiskAssessment.rs patient/Patient.rs';
export const EHR_SCOPE = `launch ${DATA_SCOPES}`;
export const STANDALONE_SCOPE = `launch/patient ${DATA_SCOPES}`;
