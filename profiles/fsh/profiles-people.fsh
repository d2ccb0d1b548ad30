// People and organisations.

Profile: ImhParent
Parent: Patient
Id: imh-parent
Title: "Parent"
Description: "The parent receiving video guidance. Identified by exactly one Norwegian national id."
* insert Clinical
* insert IdentifierSlicing
* identifier 1..*
* identifier obeys imh-national-id
* identifier contains fnr 0..1 and dnr 0..1
* identifier[fnr].system = $FNR
* identifier[fnr].value 1..1
* identifier[dnr].system = $DNR
* identifier[dnr].value 1..1
* name 1..*
* name.family 1..1
* name.given 1..*
* gender 1..1
* birthDate 1..1
* telecom 0..1
* telecom.system = #phone
* telecom.value 1..1

Profile: ImhInfant
Parent: Patient
Id: imh-infant
Title: "Infant"
Description: "An infant of the parent. A newborn may lack a national id; then the clinic's local id (…/sid/<org>/infant) identifies it."
* insert Clinical
* insert IdentifierSlicing
* identifier 1..*
* identifier obeys imh-infant-id
* identifier contains fnr 0..1 and dnr 0..1
* identifier[fnr].system = $FNR
* identifier[fnr].value 1..1
* identifier[dnr].system = $DNR
* identifier[dnr].value 1..1
* gender 1..1
* birthDate 1..1

Profile: ImhRelatedPerson
Parent: RelatedPerson
Id: imh-related-person
Title: "Parent as related person of the infant"
Description: "The parent in their relationship to one infant: names the infant (patient) and carries the parent's national id, so every infant of a parent is found by the parent's id."
* insert Clinical
* insert BusinessId(related-person)
* identifier obeys imh-related-person-national-id
* patient only Reference(Patient)
* relationship 1..*
* relationship from $vs-parent-relationship (extensible)
* name 1..*

Profile: ImhOrganization
Parent: Organization
Id: imh-organization
Title: "Organisation"
Description: "A clinic or a primary-treatment organisation, identified by its Norwegian organisation number."
* insert IdentifierSlicing
* identifier 1..*
* identifier contains orgNumber 1..1 and resh 0..1
* identifier[orgNumber].system = $ORGNR
* identifier[orgNumber].value 1..1
* identifier[resh].system = $RESH
* identifier[resh].value 1..1
* name 1..1
* active 1..1
* active = true

Profile: ImhPractitioner
Parent: Practitioner
Id: imh-practitioner
Title: "Practitioner"
Description: "A clinician, identified by HPR number. A rater may be given by HPR number only."
* insert IdentifierSlicing
* identifier 1..*
* identifier contains hpr 1..1
* identifier[hpr].system = $HPR
* identifier[hpr].value 1..1
* name 0..1

Profile: ImhPractitionerRole
Parent: PractitionerRole
Id: imh-practitioner-role
Title: "Practitioner role"
Description: "A clinician's role at an organisation, with their profession."
* insert BusinessId(practitioner-role)
* practitioner 1..1
* practitioner only Reference(Practitioner)
* organization 1..1
* organization only Reference(Organization)
* code 1..*
* code from $vs-profession (extensible)

Profile: ImhBridgeDevice
Parent: Device
Id: imh-bridge-device
Title: "The bridge"
Description: "The imh-bridge software, author of the Provenance of each Bundle. Its identifier's system is the deployment's own (IDENTIFIER_NAMESPACE + /bridge/device), so it is not fixed here; its value names the software."
* identifier 1..*
* identifier.system 1..1
* identifier.value 1..1
* identifier.value = "imh-bridge"
* deviceName 1..*
