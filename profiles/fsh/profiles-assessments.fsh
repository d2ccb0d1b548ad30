// Assessments, scores, flags, goals.

Profile: ImhQuestionnaireResponse
Parent: QuestionnaireResponse
Id: imh-questionnaire-response
Title: "Assessment answers"
Description: "The answers to one instrument (EPDS, PHQ-9, GAD-7, PRFQ) or the coded PDI-RF score."
* insert Clinical
* insert SingleBusinessId(assessment)
* questionnaire 1..1
* status = #completed
* subject 1..1
* subject only Reference(Patient)
* authored 1..1
// Form renderers (LHC-Forms, Smart Forms) do not send an author; the bridge's own mapping does.
* author 0..1
* author only Reference(Patient or Practitioner or PractitionerRole)
* item 1..*
// The data decides here, not the old profile: the published Questionnaires ask choice items whose
// answer options are Codings carrying their score (ordinalValue), and SDC renderers answer such
// items with valueCoding. Totals and the PDI-RF rating are integers, PRFQ subscale means decimals,
// and the session review form adds a date and free text. Nothing else is asked.
* item.answer.value[x] only integer or decimal or Coding or date or string

Profile: ImhScoreObservation
Parent: Observation
Id: imh-score-observation
Title: "Instrument score"
Description: "A total or subscale score computed from one QuestionnaireResponse."
* insert Clinical
* insert BusinessId(score)
* status = #final
* category 1..*
* insert RequiredCategory(survey, $ObsCategory#survey)
* code 1..1
* subject 1..1
* subject only Reference(Patient)
* effective[x] 1..1
* effective[x] only dateTime
* value[x] 1..1
* value[x] only integer or Quantity
* interpretation 0..1
* interpretation from $vs-score-band (extensible)
* derivedFrom 1..1
* derivedFrom only Reference(QuestionnaireResponse)
// The episode the score belongs to (absent for scores extracted from a lone response).
* extension contains http://hl7.org/fhir/StructureDefinition/workflow-episodeOfCare named episodeOfCare 0..1

Profile: ImhCgiIObservation
Parent: Observation
Id: imh-cgi-i-observation
Title: "Clinical Global Impression – Improvement"
Description: "The therapist's CGI-I rating at closing, 1 (very much improved) to 7 (very much worse)."
* insert Clinical
* insert BusinessId(score)
* status = #final
* category 1..*
* insert RequiredCategory(survey, $ObsCategory#survey)
* code 1..1
* subject 1..1
* subject only Reference(Patient)
* effective[x] 1..1
* effective[x] only dateTime
* performer 1..*
* value[x] 1..1
* value[x] only integer
* valueInteger obeys imh-cgi-i-range

Profile: ImhSelfHarmFlag
Parent: Flag
Id: imh-self-harm-flag
Title: "Self-harm risk flag"
Description: "Raised when a self-harm item (EPDS item 10, PHQ-9 item 9) scores above zero."
* insert Clinical
* insert BusinessId(flag)
* extension contains http://hl7.org/fhir/StructureDefinition/flag-detail named detail 1..*
// Active from the assessment until a later administration of the instrument scores 0 on the
// item, or the episode ends; then inactive, with period.end.
* status from http://hl7.org/fhir/ValueSet/flag-status|4.0.1 (required)
* obeys imh-flag-inactive-ended
* category 1..*
* code = $cs-risk-flag#self-harm-item-positive
* subject only Reference(Patient)
* period 1..1
* period.start 1..1

Profile: ImhGoal
Parent: Goal
Id: imh-goal
Title: "Goal of the guidance"
Description: "A goal agreed with the parent."
* insert Clinical
* insert BusinessId(goal)
* description.text 1..1
* subject only Reference(Patient)
* start[x] 1..1
* start[x] only date
