// Clinical resources (everything except Organization, Practitioner, PractitionerRole, Device)
// carry meta.security R + PSY.
RuleSet: Clinical
* obeys imh-security-labels

// identifier 1..* with one business identifier of the given kind.
RuleSet: BusinessId(kind)
* identifier 1..*
* identifier obeys imh-bid-{kind}

// Slices identifier by its system (pattern discriminator).
RuleSet: IdentifierSlicing
* identifier ^slicing.discriminator.type = #pattern
* identifier ^slicing.discriminator.path = "system"
* identifier ^slicing.rules = #open
* identifier ^slicing.description = "Slice on the identifier system"

// For resources whose identifier is 0..1 in R4 (QuestionnaireResponse).
RuleSet: SingleBusinessId(kind)
* identifier 1..1
* identifier obeys imh-bid-{kind}

// A repeating CodeableConcept that must contain one given code: a pattern slice, not a
// pattern on the element (which would apply to every repetition, and which @medplum/core
// checks against the whole array).
RuleSet: RequiredCategory(slice, code)
* category ^slicing.discriminator.type = #pattern
* category ^slicing.discriminator.path = "$this"
* category ^slicing.rules = #open
* category ^slicing.description = "Slice on the category code"
* category contains {slice} 1..1
* category[{slice}] = {code}
