// Business identifier invariants, one per identifier kind (B/sid/<clinicOrgNumber>/<kind>).

Invariant: imh-bid-related-person
Description: "Has a business identifier https://imh-bridge.example.no/fhir/sid/<clinicOrgNumber>/related-person with a value."
Severity: #error
Expression: "%resource.identifier.where(system.startsWith('https://imh-bridge.example.no/fhir/sid/') and system.endsWith('/related-person') and value.exists()).exists()"

Invariant: imh-bid-practitioner-role
Description: "Has a business identifier https://imh-bridge.example.no/fhir/sid/<clinicOrgNumber>/practitioner-role with a value."
Severity: #error
Expression: "%resource.identifier.where(system.startsWith('https://imh-bridge.example.no/fhir/sid/') and system.endsWith('/practitioner-role') and value.exists()).exists()"

Invariant: imh-bid-referral
Description: "Has a business identifier https://imh-bridge.example.no/fhir/sid/<clinicOrgNumber>/referral with a value."
Severity: #error
Expression: "%resource.identifier.where(system.startsWith('https://imh-bridge.example.no/fhir/sid/') and system.endsWith('/referral') and value.exists()).exists()"

Invariant: imh-bid-episode
Description: "Has a business identifier https://imh-bridge.example.no/fhir/sid/<clinicOrgNumber>/episode with a value."
Severity: #error
Expression: "%resource.identifier.where(system.startsWith('https://imh-bridge.example.no/fhir/sid/') and system.endsWith('/episode') and value.exists()).exists()"

Invariant: imh-bid-care-team
Description: "Has a business identifier https://imh-bridge.example.no/fhir/sid/<clinicOrgNumber>/care-team with a value."
Severity: #error
Expression: "%resource.identifier.where(system.startsWith('https://imh-bridge.example.no/fhir/sid/') and system.endsWith('/care-team') and value.exists()).exists()"

Invariant: imh-bid-condition
Description: "Has a business identifier https://imh-bridge.example.no/fhir/sid/<clinicOrgNumber>/condition with a value."
Severity: #error
Expression: "%resource.identifier.where(system.startsWith('https://imh-bridge.example.no/fhir/sid/') and system.endsWith('/condition') and value.exists()).exists()"

Invariant: imh-bid-session
Description: "Has a business identifier https://imh-bridge.example.no/fhir/sid/<clinicOrgNumber>/session with a value."
Severity: #error
Expression: "%resource.identifier.where(system.startsWith('https://imh-bridge.example.no/fhir/sid/') and system.endsWith('/session') and value.exists()).exists()"

Invariant: imh-bid-procedure
Description: "Has a business identifier https://imh-bridge.example.no/fhir/sid/<clinicOrgNumber>/procedure with a value."
Severity: #error
Expression: "%resource.identifier.where(system.startsWith('https://imh-bridge.example.no/fhir/sid/') and system.endsWith('/procedure') and value.exists()).exists()"

Invariant: imh-bid-clip
Description: "Has a business identifier https://imh-bridge.example.no/fhir/sid/<clinicOrgNumber>/clip with a value."
Severity: #error
Expression: "%resource.identifier.where(system.startsWith('https://imh-bridge.example.no/fhir/sid/') and system.endsWith('/clip') and value.exists()).exists()"

Invariant: imh-bid-assessment
Description: "Has a business identifier https://imh-bridge.example.no/fhir/sid/<clinicOrgNumber>/assessment with a value."
Severity: #error
Expression: "%resource.identifier.where(system.startsWith('https://imh-bridge.example.no/fhir/sid/') and system.endsWith('/assessment') and value.exists()).exists()"

Invariant: imh-bid-score
Description: "Has a business identifier https://imh-bridge.example.no/fhir/sid/<clinicOrgNumber>/score with a value."
Severity: #error
Expression: "%resource.identifier.where(system.startsWith('https://imh-bridge.example.no/fhir/sid/') and system.endsWith('/score') and value.exists()).exists()"

Invariant: imh-bid-flag
Description: "Has a business identifier https://imh-bridge.example.no/fhir/sid/<clinicOrgNumber>/flag with a value."
Severity: #error
Expression: "%resource.identifier.where(system.startsWith('https://imh-bridge.example.no/fhir/sid/') and system.endsWith('/flag') and value.exists()).exists()"

Invariant: imh-bid-goal
Description: "Has a business identifier https://imh-bridge.example.no/fhir/sid/<clinicOrgNumber>/goal with a value."
Severity: #error
Expression: "%resource.identifier.where(system.startsWith('https://imh-bridge.example.no/fhir/sid/') and system.endsWith('/goal') and value.exists()).exists()"

Invariant: imh-bid-consent
Description: "Has a business identifier https://imh-bridge.example.no/fhir/sid/<clinicOrgNumber>/consent with a value."
Severity: #error
Expression: "%resource.identifier.where(system.startsWith('https://imh-bridge.example.no/fhir/sid/') and system.endsWith('/consent') and value.exists()).exists()"
