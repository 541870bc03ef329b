// fhirclient 2.6 (lib/security/browser.js) uses globalThis.crypto when it exists and only then falls back to
// isomorphic-webcrypto, whose optional react-native/expo dependencies weigh ~350 MB. Every browser the app
// supports and Node >= 20 have globalThis.crypto, so this stand-in hands back the platform's own WebCrypto.
if (!globalThis.crypto || !globalThis.crypto.subtle) {
  throw new Error('WebCrypto (globalThis.crypto.subtle) is missing: the SMART app needs a current browser over HTTPS or localhost.');
}
module.exports = { default: globalThis.crypto };
