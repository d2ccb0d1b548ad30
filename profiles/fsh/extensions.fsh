// Extensions named in the mapping spec. URLs: https://imh-bridge.example.no/fhir/StructureDefinition/<id>

Extension: ImhReferralSource
Id: imh-referral-source
Title: "Referral source"
Description: "Who referred the parent to video guidance."
Context: ServiceRequest
* value[x] 1..1
* value[x] only Coding
* valueCoding from $vs-referral-source (required)
* valueCoding.system 1..1
* valueCoding.code 1..1

Extension: ImhEpisodeClosing
Id: imh-episode-closing
Title: "Episode closing"
Description: "How and when a video-guidance episode was closed, and the therapist's recommendation."
Context: EpisodeOfCare
* extension contains
    closedOn 1..1 and
    reason 1..1 and
    recommendation 0..1
* extension[closedOn].value[x] 1..1
* extension[closedOn].value[x] only date
* extension[reason].value[x] 1..1
* extension[reason].value[x] only Coding
* extension[reason].valueCoding from $vs-closing-reason (required)
* extension[recommendation].value[x] 1..1
* extension[recommendation].value[x] only string
* value[x] 0..0

Extension: ImhSessionAttendance
Id: imh-session-attendance
Title: "Session attendance"
Description: "Whether the parent attended the session: planned, attended, cancelled, no-show."
Context: Encounter
* value[x] 1..1
* value[x] only Coding
* valueCoding from $vs-session-attendance (required)
* valueCoding.system 1..1
* valueCoding.code 1..1

Extension: ImhCancellationReason
Id: imh-cancellation-reason
Title: "Cancellation reason"
Description: "Why a session was cancelled."
Context: Encounter
* value[x] 1..1
* value[x] only Coding
* valueCoding from $vs-cancellation-reason (required)
* valueCoding.system 1..1
* valueCoding.code 1..1

Extension: ImhFocusElement
Id: imh-focus-element
Title: "Marte Meo focus element"
Description: "A Marte Meo element worked on in the session."
Context: Procedure
* value[x] 1..1
* value[x] only Coding
* valueCoding from $vs-marte-meo-focus-element (required)
* valueCoding.system 1..1
* valueCoding.code 1..1

Extension: ImhChangeTheme
Id: imh-change-theme
Title: "Change-process theme"
Description: "The parent's change process as the therapist sees it."
Context: Procedure
* value[x] 1..1
* value[x] only Coding
* valueCoding from $vs-change-process-theme (required)
* valueCoding.system 1..1
* valueCoding.code 1..1

Extension: ImhReviewedClip
Id: imh-reviewed-clip
Title: "Reviewed clip"
Description: "A video clip from an earlier filming session that was reviewed in this session."
Context: Procedure
* value[x] 1..1
* value[x] only Reference(DocumentReference)

Extension: ImhAttachmentSha256
Id: imh-attachment-sha256
Title: "Attachment SHA-256"
Description: "SHA-256 digest of the referenced content, as 64 lowercase hexadecimal digits (Attachment.hash is base64 SHA-1 in R4)."
Context: Attachment
* value[x] 1..1
* value[x] only string
* valueString obeys imh-sha256
* valueString ^extension[0].valueString = "^[0-9a-fA-F]{64}$"

Extension: ImhClipDuration
Id: imh-clip-duration
Title: "Clip duration"
Description: "Length of the video clip, in seconds (UCUM s)."
Context: Attachment
* value[x] 1..1
* value[x] only Duration
* valueDuration.value 1..1
* valueDuration.system 1..1
* valueDuration.system = $UCUM (exactly)
* valueDuration.code 1..1
* valueDuration.code = #s (exactly)
