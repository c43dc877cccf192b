// The Medplum client (@medplum/core MedplumClient), unmodified: the clinic flow of
// tests/clients/_clinic_flow.py against the hub's FHIR base, with Node's built-in fetch.
// MedplumClient.startJwtAssertionLogin posts a client_credentials grant with a client assertion
// but no scope; SMART Backend Services requires one, and the hub answers invalid_scope (recorded
// as result.assertionLogin). So the client is given the tokens the test minted (setAccessToken).
import { MedplumClient } from "@medplum/core";

import { clientAssertion, etag, print, readConfig, withSubject } from "./lib.mjs";

const config = readConfig();
const connect = (token) => {
  const client = new MedplumClient({
    baseUrl: config.hubBase,
    fhirUrlPath: "fhir",
    tokenUrl: config.tokenUrl,
    fetch: (url, init) => fetch(url, init),
    cacheTime: 0,
  });
  if (token) client.setAccessToken(token);
  return client;
};
const result = { token: { minted: true } };

try {
  await connect().startJwtAssertionLogin(await clientAssertion(config));
  result.assertionLogin = "ok";
} catch (error) {
  // fetchTokens wraps the token endpoint's error_description in its cause.
  result.assertionLogin = String(error.cause?.message ?? error.message);
}

const clinic = connect(config.clinic.token);
const [first, second, third] = config.patients;
const created = await clinic.createResource(first);
result.created = { id: created.id, versionId: created.meta.versionId };

const read = await clinic.readResource("Patient", created.id);
result.read = { id: read.id, versionId: read.meta.versionId, family: read.name[0].family };

const found = await clinic.searchResources("Patient", config.search);
result.searched = found.map((p) => p.id);

const updated = await clinic.updateResource({ ...read, birthDate: config.birthDate });
result.updated = { versionId: updated.meta.versionId, birthDate: updated.birthDate };

// patchResource sends application/json-patch+json; If-Match goes in through its request options.
const patched = await clinic.patchResource("Patient", read.id, config.patch, {
  headers: { "If-Match": etag(updated) },
});
result.patched = { versionId: patched.meta.versionId, gender: patched.gender };

const query = `identifier=${config.identifier2}`;
const made = await clinic.createResourceIfNoneExist(second, query);
const again = await clinic.createResourceIfNoneExist(second, query);
result.conditional = { first: made.id, again: again.id };

result.paged = [];
for await (const page of clinic.searchResourcePages("Patient", { family: first.name[0].family, _count: 1 })) {
  result.paged.push(...page.map((p) => p.id));
}

const doomed = await clinic.createResource(third);
await clinic.deleteResource("Patient", doomed.id);
let statusAfter = 200;
try {
  await clinic.readResource("Patient", doomed.id);
} catch (error) {
  // MedplumClient throws an OperationOutcomeError; its issue code says "deleted" for a 410.
  statusAfter = error.outcome?.issue?.[0]?.code === "deleted" ? 410 : error.outcome?.issue?.[0]?.code;
}
result.deleted = { id: doomed.id, statusAfter };

const request = await clinic.createResource(withSubject(config, created.id));
const partner = connect(config.partner.token);
const tasks = await partner.searchResources("Task", { focus: `ServiceRequest/${request.id}` });
const task = tasks[0];
const accepted = await partner.patchResource("Task", task.id, config.accept, {
  headers: { "If-Match": etag(task) },
});
result.referral = {
  serviceRequest: request.id,
  task: task.id,
  taskStatus: task.status,
  owner: task.owner.reference,
  accepted: { status: accepted.status, versionId: accepted.meta.versionId },
};
print(result);
