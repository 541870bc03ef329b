/**
 * A CDS client JWT rejection (cds-hooks/client-auth.ts gives a sentence) as one of a few fixed metric label
 * values, so the label set stays bounded and never carries an issuer, a key id or a token. The sentences are
 * matched by their fixed parts; test/metrics checks every rejection the verifier makes lands on its label, so a
 * reworded message shows up there instead of silently as `other`.
 */
export type JwtRejectionReason =
  | 'missing-token'
  | 'malformed'
  | 'algorithm'
  | 'no-kid'
  | 'no-issuer'
  | 'untrusted-issuer'
  | 'expired'
  | 'audience'
  | 'signature'
  | 'unknown-key'
  | 'claims'
  | 'no-jti'
  | 'issued-in-future'
  | 'lifetime'
  | 'replay'
  | 'other';

const RULES: [RegExp, JwtRejectionReason][] = [
  [/^missing or malformed Authorization header/, 'missing-token'],
  [/^token is not a decodable JWT/, 'malformed'],
  [/^alg .* is not allowed/, 'algorithm'],
  [/^JWT header has no kid/, 'no-kid'],
  [/^JWT has no iss/, 'no-issuer'],
  [/^iss .* is not a trusted CDS client/, 'untrusted-issuer'],
  [/^JWT rejected: ERR_JWT_EXPIRED/, 'expired'],
  [/^JWT rejected: ERR_JWT_CLAIM_VALIDATION_FAILED .*"aud"/, 'audience'],
  [/^JWT rejected: ERR_JWS_SIGNATURE_VERIFICATION_FAILED/, 'signature'],
  [/^JWT rejected: ERR_JWKS_(NO_MATCHING_KEY|MULTIPLE_MATCHING_KEYS)/, 'unknown-key'],
  [/^JWT rejected: ERR_JWT_CLAIM_VALIDATION_FAILED/, 'claims'],
  [/^jti is not a non-empty string/, 'no-jti'],
  [/^iat is in the future/, 'issued-in-future'],
  [/^lifetime exp-iat exceeds/, 'lifetime'],
  [/^jti was already used/, 'replay'],
];

export function jwtRejectionReason(sentence: string): JwtRejectionReason {
  for (const [re, label] of RULES) if (re.test(sentence)) return label;
  return 'other';
}
