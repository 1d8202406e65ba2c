/*-------------------------------------------------------------------------
 *
 * calls.h
 *	  Recording a synchronous call before it is sent, whatever becomes of
 *	  the caller's transaction.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TELNYX_CALLS_H
#define TELNYX_CALLS_H

extern void calls_init(void);
extern void calls_record(const char *request_key, const char *body,
						 int64 numbers);
extern void calls_refused(const char *request_key);

#endif							/* TELNYX_CALLS_H */
