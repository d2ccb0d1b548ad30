// Sessions, video guidance, clips.

Profile: ImhEncounter
Parent: Encounter
Id: imh-encounter
Title: "Video-guidance session"
Description: "One session of the episode, planned or held."
* insert Clinical
* insert BusinessId(session)
* extension contains
    ImhSessionAttendance named attendance 1..1 and
    ImhCancellationReason named cancellationReason 0..1
* type 1..*
* type from $vs-session-kind (extensible)
* subject 1..1
* subject only Reference(Patient)
* episodeOfCare 1..*
* period 1..1
* period.start 1..1
* length.system 1..1
* length.system = $UCUM
* length.code 1..1
* length.code = #min

Profile: ImhVideoGuidance
Parent: Procedure
Id: imh-video-guidance
Title: "Video guidance"
Description: "The video guidance given in one held session: focus elements, change themes, reviewed clips."
* insert Clinical
* insert BusinessId(procedure)
* extension contains
    ImhFocusElement named focusElement 0..* and
    ImhChangeTheme named changeTheme 0..* and
    ImhReviewedClip named reviewedClip 0..*
* status = #completed
* code 1..1
* code from $vs-video-guidance-method (extensible)
* category from $vs-session-kind (extensible)
* subject only Reference(Patient)
* encounter 1..1
* performed[x] 1..1
* performed[x] only Period

Profile: ImhVideoClip
Parent: DocumentReference
Id: imh-video-clip
Title: "Video clip"
Description: "A clip filmed in a session. The video stays in the clinic's store; the bridge sends only where it is and its digest."
* insert Clinical
* insert BusinessId(clip)
* status = #current
* type 1..1
* type from $vs-clip-type (extensible)
* subject 1..1
* subject only Reference(Patient)
* author 1..*
* content 1..1
* content.attachment.contentType 1..1
* content.attachment.url 1..1
* content.attachment.extension contains
    ImhAttachmentSha256 named sha256 1..1 and
    ImhClipDuration named duration 0..1
* context 1..1
* context.encounter 1..*

Profile: ImhPsychotherapyNote
Parent: DocumentReference
Id: imh-psychotherapy-note
Title: "Session note"
Description: "The therapist's free-text note of one session, kept apart from the session itself and labelled as a psychotherapy note with the highest confidentiality, so that servers and the sharing rules keep it inside the clinic. Never shared."
* obeys imh-psychotherapy-note-labels
* insert BusinessId(session-note)
* status = #current
* type 1..1
* type = $LOINC#11506-3
* subject 1..1
* subject only Reference(Patient)
* date 1..1
* content 1..1
* content.attachment.contentType 1..1
* content.attachment.contentType = #text/plain;charset=utf-8
* content.attachment.data 1..1
* context 1..1
* context.encounter 1..1
* context.encounter only Reference(Encounter)
