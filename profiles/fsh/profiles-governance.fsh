// Consent and provenance.

Profile: ImhConsent
Parent: Consent
Id: imh-consent
Title: "Consent to share with primary treatment"
Description: "The parent's decision about what the primary-treatment team may see."
* insert Clinical
* insert BusinessId(consent)
* scope = $ConsentScope#patient-privacy
* category 1..*
* insert RequiredCategory(patientConsent, $LOINC#59284-0)
* patient 1..1
* patient only Reference(Patient)
* dateTime 1..1
* organization 1..*
* organization only Reference(Organization)
* policyRule 1..1
* policyRule = $ActCode#OPTIN
* provision 0..1  // absent when the parent declined
* provision.type 1..1
* provision.type = #permit
* provision.actor 1..*
* provision.actor.role = $ParticipationType#IRCP
* provision.actor.reference only Reference(Organization)
* provision.class from $vs-consent-share-class (extensible)

Profile: ImhProvenance
Parent: Provenance
Id: imh-provenance
Title: "Provenance of a bridge Bundle"
Description: "Who assembled the Bundle (the bridge) and on whose behalf (the clinic)."
* insert Clinical
* target 1..*
* activity 1..1
* agent 2..*
* agent.type 1..1
