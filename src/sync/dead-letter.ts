/**
 * Names for the delivery queue's dead-letter queue, shared by the Worker and its tests. They
 * live outside src/worker.ts because workerd takes every named export of the Worker's main
 * module as an entrypoint and refuses to start on one that is a string.
 */

/** The delivery queue's dead-letter queue (wrangler.toml `dead_letter_queue`). */
export const DEAD_LETTER_QUEUE = 'imh-bridge-delivery-dlq';

/** Why a job from the dead-letter queue is dead; shown on each unfinished target. */
export const DEAD_LETTERED = 'the delivery queue gave up on this job after its retries (dead-letter queue); replay it with POST /v1/jobs/{id}/$replay';
