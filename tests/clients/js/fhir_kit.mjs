// fhir-kit-client, unmodified: the clinic flow of tests/clients/_clinic_flow.py.
// fhir-kit-client finds the token endpoint (smartAuthMetadata) but has no SMART Backend Services
// grant, so this script signs the assertion itself (jose) and hands the token to the client.
import { randomUUID } from "node:crypto";

import { Client } from "fhir-kit-client";

import { backendServicesToken, etag, print, readConfig, withSubject } from "./lib.mjs";

const config = readConfig();
const clinic = new Client({ baseUrl: config.fhirBase });
const { tokenUrl } = await clinic.smartAuthMetadata();
const token = await backendServicesToken(String(tokenUrl), config);
clinic.bearerToken = token.access_token;
const result = { token: { scope: token.scope } };

const [first, second, third, fourth] = config.patients;
const created = await clinic.create({ resourceType: "Patient", body: first });
result.created = { id: created.id, versionId: created.meta.versionId };

const read = await clinic.read({ resourceType: "Patient", id: created.id });
result.read = { id: read.id, versionId: read.meta.versionId, family: read.name[0].family };

const bundle = await clinic.search({ resourceType: "Patient", searchParams: config.search });
result.searched = (bundle.entry ?? []).map((e) => e.resource.id);

const updated = await clinic.update({
  resourceType: "Patient",
  id: read.id,
  body: { ...read, birthDate: config.birthDate },
});
result.updated = { versionId: updated.meta.versionId, birthDate: updated.birthDate };

// fhir-kit-client sends application/json-patch+json; If-Match goes in through its request options.
const patched = await clinic.patch({
  resourceType: "Patient",
  id: read.id,
  jsonPatch: config.patch,
  options: { headers: { "If-Match": etag(updated) } },
});
result.patched = { versionId: patched.meta.versionId, gender: patched.gender };
// A patch computed from an older version is refused, not applied over the newer one.
try {
  await clinic.patch({
    resourceType: "Patient",
    id: read.id,
    jsonPatch: [{ op: "replace", path: "/gender", value: "male" }],
    options: { headers: { "If-Match": etag(read) } },
  });
  result.stalePatch = 200;
} catch (error) {
  result.stalePatch = error.response.status;
}

// Conditional create: If-None-Exist through the request options (http.html#ccreate).
const ifNoneExist = { headers: { "If-None-Exist": `identifier=${config.identifier2}` } };
const made = await clinic.create({ resourceType: "Patient", body: second, options: ifNoneExist });
const again = await clinic.create({ resourceType: "Patient", body: second, options: ifNoneExist });
result.conditional = { first: made.id, again: again.id };

result.paged = [];
let page = await clinic.search({ resourceType: "Patient", searchParams: { family: first.name[0].family, _count: 1 } });
while (page) {
  result.paged.push(...(page.entry ?? []).map((e) => e.resource.id));
  page = await clinic.nextPage({ bundle: page });
}

const doomed = await clinic.create({ resourceType: "Patient", body: third });
await clinic.delete({ resourceType: "Patient", id: doomed.id });
let statusAfter = 200;
try {
  await clinic.read({ resourceType: "Patient", id: doomed.id });
} catch (error) {
  statusAfter = error.response.status;
}
result.deleted = { id: doomed.id, statusAfter };

// The referral, then the partner's side with its own token.
const request = await clinic.create({ resourceType: "ServiceRequest", body: withSubject(config, created.id) });
const partner = new Client({ baseUrl: config.fhirBase, bearerToken: config.partner.token });
const tasks = await partner.search({
  resourceType: "Task",
  searchParams: { focus: `ServiceRequest/${request.id}` },
});
const task = tasks.entry[0].resource;
const accepted = await partner.patch({
  resourceType: "Task",
  id: task.id,
  jsonPatch: config.accept,
  options: { headers: { "If-Match": etag(task) } },
});
result.referral = {
  serviceRequest: request.id,
  task: task.id,
  taskStatus: task.status,
  owner: task.owner.reference,
  accepted: { status: accepted.status, versionId: accepted.meta.versionId },
};

// A referral with its Patient in one transaction; fhir-kit-client posts it to the base with a
// trailing slash ("/fhir/"), which the hub answers directly.
const fullUrl = `urn:uuid:${randomUUID()}`;
const bundle2 = await clinic.transaction({
  body: {
    resourceType: "Bundle",
    type: "transaction",
    entry: [
      { fullUrl, resource: fourth, request: { method: "POST", url: "Patient" } },
      {
        resource: { ...config.referral, subject: { reference: fullUrl } },
        request: { method: "POST", url: "ServiceRequest" },
      },
    ],
  },
});
result.transaction = bundle2.entry.map((e) => [e.response.status, e.response.location]);
print(result);
