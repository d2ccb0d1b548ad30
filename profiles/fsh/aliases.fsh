// Canonical systems used by the profiles. Our canonical base: https://imh-bridge.example.no/fhir
Alias: $FNR = urn:oid:2.16.578.1.12.4.1.4.1
Alias: $DNR = urn:oid:2.16.578.1.12.4.1.4.2
Alias: $HPR = urn:oid:2.16.578.1.12.4.1.4.4
Alias: $ORGNR = urn:oid:2.16.578.1.12.4.1.2.101
Alias: $RESH = urn:oid:2.16.578.1.12.4.1.2.102
Alias: $ICD10 = http://hl7.org/fhir/sid/icd-10
Alias: $LOINC = http://loinc.org
Alias: $UCUM = http://unitsofmeasure.org
Alias: $ActCode = http://terminology.hl7.org/CodeSystem/v3-ActCode
Alias: $ParticipationType = http://terminology.hl7.org/CodeSystem/v3-ParticipationType
Alias: $ConsentScope = http://terminology.hl7.org/CodeSystem/consentscope
Alias: $ObsCategory = http://terminology.hl7.org/CodeSystem/observation-category
Alias: $FlagCategory = http://terminology.hl7.org/CodeSystem/flag-category
Alias: $ConditionCategory = http://terminology.hl7.org/CodeSystem/condition-category

// Our ValueSets (mappings/ValueSet-<id>.json); each includes the CodeSystem of the same id.
Alias: $vs-video-guidance-method = https://imh-bridge.example.no/fhir/ValueSet/video-guidance-method
Alias: $vs-referral-source = https://imh-bridge.example.no/fhir/ValueSet/referral-source
Alias: $vs-session-kind = https://imh-bridge.example.no/fhir/ValueSet/session-kind
Alias: $vs-session-attendance = https://imh-bridge.example.no/fhir/ValueSet/session-attendance
Alias: $vs-cancellation-reason = https://imh-bridge.example.no/fhir/ValueSet/cancellation-reason
Alias: $vs-marte-meo-focus-element = https://imh-bridge.example.no/fhir/ValueSet/marte-meo-focus-element
Alias: $vs-change-process-theme = https://imh-bridge.example.no/fhir/ValueSet/change-process-theme
Alias: $vs-clip-type = https://imh-bridge.example.no/fhir/ValueSet/clip-type
Alias: $vs-instrument-score = https://imh-bridge.example.no/fhir/ValueSet/instrument-score
Alias: $vs-score-band = https://imh-bridge.example.no/fhir/ValueSet/score-band
Alias: $vs-closing-reason = https://imh-bridge.example.no/fhir/ValueSet/closing-reason
Alias: $vs-parent-relationship = https://imh-bridge.example.no/fhir/ValueSet/parent-relationship
Alias: $vs-profession = https://imh-bridge.example.no/fhir/ValueSet/profession
Alias: $vs-consent-share-class = https://imh-bridge.example.no/fhir/ValueSet/consent-share-class

Alias: $cs-risk-flag = https://imh-bridge.example.no/fhir/CodeSystem/risk-flag
Alias: $cs-clip-type = https://imh-bridge.example.no/fhir/CodeSystem/clip-type
