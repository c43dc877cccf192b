// Shared by the client scripts: the configuration the test sends on stdin, a SMART Backend Services
// client assertion (for scripts whose client cannot make one), and the JSON result on stdout.
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";

import { SignJWT, importJWK } from "jose";

export const ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

export function readConfig() {
  return JSON.parse(readFileSync(0, "utf8"));
}

export function print(result) {
  process.stdout.write(JSON.stringify(result));
}

// https://hl7.org/fhir/smart-app-launch/backend-services.html#authenticating-to-the-token-endpoint
export async function clientAssertion(config) {
  const jwk = config.privateJwk;
  const key = await importJWK(jwk, "ES384");
  const clientId = config.clinic.clientId;
  return new SignJWT({})
    .setProtectedHeader({ alg: "ES384", kid: jwk.kid, typ: "JWT" })
    .setIssuer(clientId)
    .setSubject(clientId)
    .setAudience(config.tokenUrl)
    .setJti(randomUUID())
    .setExpirationTime("4m")
    .sign(key);
}

export async function backendServicesToken(tokenUrl, config) {
  const body = new URLSearchParams({
    grant_type: "client_credentials",
    client_assertion_type: ASSERTION_TYPE,
    client_assertion: await clientAssertion(config),
    scope: config.scope,
  });
  const response = await fetch(tokenUrl, { method: "POST", body });
  if (!response.ok) throw new Error(`token endpoint answered ${response.status}`);
  return response.json();
}

export const etag = (resource) => `W/"${resource.meta.versionId}"`;

export function withSubject(config, patientId) {
  return { ...config.referral, subject: { reference: `Patient/${patientId}` } };
}
