// Business identifier invariants, one per identifier kind: {namespace}/{clinicOrgNumber}/{kind}
// (or {namespace}/sdc/{kind} for responses extracted from a form renderer, which name no clinic).
// The namespace is the deployment's own (IDENTIFIER_NAMESPACE), so the profiles name no host.

Invariant: imh-bid-related-person
Description: "Has a business identifier {namespace}/<clinicOrgNumber>/related-person with a value."
Severity: #error
Expression: "%resource.identifier.where(system.matches('^https://[^/]+(/[^/]+)*/([0-9]{9}|sdc)/related-person$') and value.exists()).exists()"

Invariant: imh-bid-practitioner-role
Description: "Has a business identifier {namespace}/<clinicOrgNumber>/practitioner-role with a value."
Severity: #error
Expression: "%resource.identifier.where(system.matches('^https://[^/]+(/[^/]+)*/([0-9]{9}|sdc)/practitioner-role$') and value.exists()).exists()"

Invariant: imh-bid-referral
Description: "Has a business identifier {namespace}/<clinicOrgNumber>/referral with a value."
Severity: #error
Expression: "%resource.identifier.where(system.matches('^https://[^/]+(/[^/]+)*/([0-9]{9}|sdc)/referral$') and value.exists()).exists()"

Invariant: imh-bid-episode
Description: "Has a business identifier {namespace}/<clinicOrgNumber>/episode with a value."
Severity: #error
Expression: "%resource.identifier.where(system.matches('^https://[^/]+(/[^/]+)*/([0-9]{9}|sdc)/episode$') and value.exists()).exists()"

Invariant: imh-bid-care-team
Description: "Has a business identifier {namespace}/<clinicOrgNumber>/care-team with a value."
Severity: #error
Expression: "%resource.identifier.where(system.matches('^https://[^/]+(/[^/]+)*/([0-9]{9}|sdc)/care-team$') and value.exists()).exists()"

Invariant: imh-bid-condition
Description: "Has a business identifier {namespace}/<clinicOrgNumber>/condition with a value."
Severity: #error
Expression: "%resource.identifier.where(system.matches('^https://[^/]+(/[^/]+)*/([0-9]{9}|sdc)/condition$') and value.exists()).exists()"

Invariant: imh-bid-session
Description: "Has a business identifier {namespace}/<clinicOrgNumber>/session with a value."
Severity: #error
Expression: "%resource.identifier.where(system.matches('^https://[^/]+(/[^/]+)*/([0-9]{9}|sdc)/session$') and value.exists()).exists()"

Invariant: imh-bid-procedure
Description: "Has a business identifier {namespace}/<clinicOrgNumber>/procedure with a value."
Severity: #error
Expression: "%resource.identifier.where(system.matches('^https://[^/]+(/[^/]+)*/([0-9]{9}|sdc)/procedure$') and value.exists()).exists()"

Invariant: imh-bid-clip
Description: "Has a business identifier {namespace}/<clinicOrgNumber>/clip with a value."
Severity: #error
Expression: "%resource.identifier.where(system.matches('^https://[^/]+(/[^/]+)*/([0-9]{9}|sdc)/clip$') and value.exists()).exists()"

Invariant: imh-bid-assessment
Description: "Has a business identifier {namespace}/<clinicOrgNumber>/assessment with a value."
Severity: #error
Expression: "%resource.identifier.where(system.matches('^https://[^/]+(/[^/]+)*/([0-9]{9}|sdc)/assessment$') and value.exists()).exists()"

Invariant: imh-bid-score
Description: "Has a business identifier {namespace}/<clinicOrgNumber>/score with a value."
Severity: #error
Expression: "%resource.identifier.where(system.matches('^https://[^/]+(/[^/]+)*/([0-9]{9}|sdc)/score$') and value.exists()).exists()"

Invariant: imh-bid-flag
Description: "Has a business identifier {namespace}/<clinicOrgNumber>/flag with a value."
Severity: #error
Expression: "%resource.identifier.where(system.matches('^https://[^/]+(/[^/]+)*/([0-9]{9}|sdc)/flag$') and value.exists()).exists()"

Invariant: imh-bid-goal
Description: "Has a business identifier {namespace}/<clinicOrgNumber>/goal with a value."
Severity: #error
Expression: "%resource.identifier.where(system.matches('^https://[^/]+(/[^/]+)*/([0-9]{9}|sdc)/goal$') and value.exists()).exists()"

Invariant: imh-bid-consent
Description: "Has a business identifier {namespace}/<clinicOrgNumber>/consent with a value."
Severity: #error
Expression: "%resource.identifier.where(system.matches('^https://[^/]+(/[^/]+)*/([0-9]{9}|sdc)/consent$') and value.exists()).exists()"

Invariant: imh-bid-session-note
Description: "Has a business identifier {namespace}/<clinicOrgNumber>/session-note with a value."
Severity: #error
Expression: "%resource.identifier.where(system.matches('^https://[^/]+(/[^/]+)*/([0-9]{9}|sdc)/session-note$') and value.exists()).exists()"
