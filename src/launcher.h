/*-------------------------------------------------------------------------
 *
 * launcher.h
 *	  The launcher: one sender for each database to serve.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TELNYX_LAUNCHER_H
#define TELNYX_LAUNCHER_H

extern void launcher_init(void);
extern const char *launcher_unserved_reason(void);

#endif							/* TELNYX_LAUNCHER_H */
