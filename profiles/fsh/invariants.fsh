// Invariants. Business identifiers are {namespace}/<clinicOrgNumber>/<kind>, the namespace being
// the deployment's (IDENTIFIER_NAMESPACE): the system is checked by its shape, not fixed.
// Element-level invariants on `identifier` use %resource so that the issue names the identifier.

Invariant: imh-security-labels
Description: "Clinical resources carry the confidentiality label R and the sensitivity label PSY."
Severity: #error
Expression: "meta.security.where(system = 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality' and code = 'R').exists() and meta.security.where(system = 'http://terminology.hl7.org/CodeSystem/v3-ActCode' and code = 'PSY').exists()"

Invariant: imh-national-id
Description: "Exactly one Norwegian national identifier (fødselsnummer or D-number)."
Severity: #error
Expression: "%resource.identifier.where((system = 'urn:oid:2.16.578.1.12.4.1.4.1' or system = 'urn:oid:2.16.578.1.12.4.1.4.2') and value.exists()).count() = 1"

Invariant: imh-infant-id
Description: "An infant has a national identifier (fødselsnummer or D-number) or a local identifier of the clinic (…/sid/<org>/infant)."
Severity: #error
Expression: "%resource.identifier.where(((system = 'urn:oid:2.16.578.1.12.4.1.4.1' or system = 'urn:oid:2.16.578.1.12.4.1.4.2') or system.matches('^https://[^/]+(/[^/]+)*/([0-9]{9}|sdc)/infant$')) and value.exists()).exists()"

Invariant: imh-sha256
Description: "A SHA-256 digest as 64 lowercase hexadecimal digits."
Severity: #error
Expression: "matches('^[0-9a-fA-F]{64}$')"

Invariant: imh-cgi-i-range
Description: "CGI-I is scored 1 (very much improved) to 7 (very much worse)."
Severity: #error
Expression: "$this >= 1 and $this <= 7"

Invariant: imh-related-person-national-id
Description: "Carries the parent's Norwegian national id (fødselsnummer or D-number)."
Severity: #error
Expression: "%resource.identifier.where((system = 'urn:oid:2.16.578.1.12.4.1.4.1' or system = 'urn:oid:2.16.578.1.12.4.1.4.2') and value.exists()).exists()"

Invariant: imh-psychotherapy-note-labels
Description: "A session note carries the confidentiality label V (very restricted) and the sensitivity labels PSY and PSYTHPN (psychotherapy note)."
Severity: #error
Expression: "meta.security.where(system = 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality' and code = 'V').exists() and meta.security.where(system = 'http://terminology.hl7.org/CodeSystem/v3-ActCode' and code = 'PSY').exists() and meta.security.where(system = 'http://terminology.hl7.org/CodeSystem/v3-ActCode' and code = 'PSYTHPN').exists()"

Invariant: imh-flag-inactive-ended
Description: "A self-harm flag that is no longer active says when it ended."
Severity: #error
Expression: "status = 'inactive' implies period.end.exists()"
