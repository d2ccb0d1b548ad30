// Referral, episode, team, conditions.

Profile: ImhReferral
Parent: ServiceRequest
Id: imh-referral
Title: "Referral to video guidance"
Description: "The referral that started the episode."
* insert Clinical
* insert BusinessId(referral)
* extension contains ImhReferralSource named referralSource 1..1
* intent = #order
* code 1..1
* code from $vs-video-guidance-method (extensible)
* subject only Reference(Patient)
* authoredOn 1..1
* reasonCode 0..1

Profile: ImhEpisodeOfCare
Parent: EpisodeOfCare
Id: imh-episode-of-care
Title: "Video-guidance episode"
Description: "One course of Marte Meo video guidance for one parent."
* insert Clinical
* insert BusinessId(episode)
* extension contains ImhEpisodeClosing named closing 0..1
* type 1..*
* type from $vs-video-guidance-method (extensible)
* patient only Reference(Patient)
* managingOrganization 1..1
* managingOrganization only Reference(Organization)
* referralRequest 1..*
* careManager only Reference(Practitioner)
* team only Reference(CareTeam)

Profile: ImhCareTeam
Parent: CareTeam
Id: imh-care-team
Title: "Care team"
Description: "The clinic's therapist and, where known, the parent's primary-treatment contact."
* insert Clinical
* insert BusinessId(care-team)
* status 1..1
* subject 1..1
* subject only Reference(Patient)
* participant.member 1..1  // no participant yet while the episode is planned
* managingOrganization 1..*

Profile: ImhCondition
Parent: Condition
Id: imh-condition
Title: "Parent's condition"
Description: "A condition of the parent treated by the primary-treatment team, coded in ICD-10."
* insert Clinical
* insert BusinessId(condition)
* clinicalStatus 1..1
* verificationStatus 1..1
* category 1..*
* code 1..1
* code.coding 1..1
* code.coding.system 1..1
* code.coding.system = $ICD10
* code.coding.code 1..1
* code.coding.display 1..1
* subject only Reference(Patient)
