// SMART's fhirclient (client-js), unmodified: the clinic flow of tests/clients/_clinic_flow.py.
// client-js launches apps (EHR and standalone launch) and has no SMART Backend Services grant, so it
// is given the bearer tokens the test minted, as a server-side app would restore a stored session.
import smart from "fhirclient";

import { etag, print, readConfig, withSubject } from "./lib.mjs";

const config = readConfig();
// No launch, so no request or response to redirect: the Node adapter is given empty stand-ins.
const connect = (token) =>
  smart({}, {}).client({ serverUrl: config.fhirBase, tokenResponse: { access_token: token } });
const clinic = connect(config.clinic.token);
const result = { token: { minted: true } };

const [first, second, third] = config.patients;
const created = await clinic.create(first);
result.created = { id: created.id, versionId: created.meta.versionId };

const read = await clinic.request(`Patient/${created.id}`);
result.read = { id: read.id, versionId: read.meta.versionId, family: read.name[0].family };

const query = new URLSearchParams(config.search);
const bundle = await clinic.request(`Patient?${query}`);
result.searched = (bundle.entry ?? []).map((e) => e.resource.id);

const updated = await clinic.update({ ...read, birthDate: config.birthDate });
result.updated = { versionId: updated.meta.versionId, birthDate: updated.birthDate };

// client.patch sends application/json-patch+json and Prefer: return=presentation; If-Match is ours.
const patched = await clinic.patch(`Patient/${read.id}`, config.patch, {
  headers: { "If-Match": etag(updated) },
});
result.patched = { versionId: patched.meta.versionId, gender: patched.gender };
// A patch computed from an older version is refused, not applied over the newer one.
try {
  await clinic.patch(`Patient/${read.id}`, [{ op: "replace", path: "/gender", value: "male" }], {
    headers: { "If-Match": etag(read) },
  });
  result.stalePatch = 200;
} catch (error) {
  result.stalePatch = error.status;
}

const ifNoneExist = { headers: { "If-None-Exist": `identifier=${config.identifier2}` } };
const made = await clinic.create(second, ifNoneExist);
const again = await clinic.create(second, ifNoneExist);
result.conditional = { first: made.id, again: again.id };

// pageLimit 0: follow every `next` link; flat: the resources rather than the Bundles.
const everyPage = await clinic.request(`Patient?family=${first.name[0].family}&_count=1`, { pageLimit: 0, flat: true });
result.paged = everyPage.map((p) => p.id);

const doomed = await clinic.create(third);
await clinic.delete(`Patient/${doomed.id}`);
let statusAfter = 200;
try {
  await clinic.request(`Patient/${doomed.id}`);
} catch (error) {
  statusAfter = error.status;
}
result.deleted = { id: doomed.id, statusAfter };

const request = await clinic.create(withSubject(config, created.id));
const partner = connect(config.partner.token);
// flat: the Bundle's resources, as client-js offers them.
const tasks = await partner.request(`Task?focus=ServiceRequest/${request.id}`, { flat: true });
const task = tasks[0];
const accepted = await partner.patch(`Task/${task.id}`, config.accept, { headers: { "If-Match": etag(task) } });
result.referral = {
  serviceRequest: request.id,
  task: task.id,
  taskStatus: task.status,
  owner: task.owner.reference,
  accepted: { status: accepted.status, versionId: accepted.meta.versionId },
};
print(result);
