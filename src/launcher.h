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

#endif							/* TELNYX_LAUNCHER_H */
