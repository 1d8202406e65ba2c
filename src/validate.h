/*-------------------------------------------------------------------------
 *
 * validate.h
 *	  The rules for ordering groups and order fields.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TELNYX_VALIDATE_H
#define TELNYX_VALIDATE_H

#include "utils/jsonb.h"

/* Largest order Telnyx accepts, over all ordering groups. */
#define TELNYX_MAX_COUNT_REQUESTED 10000

/*
 * Longest connection_id, messaging_profile_id, customer_reference or
 * billing_group_id accepted in an order, in bytes.
 */
#define TELNYX_MAX_FIELD_LEN 1024

/* The order-level strings of an inexplicit number order; NULL = absent. */
typedef struct OrderFields
{
	const char *connection_id;
	const char *messaging_profile_id;
	const char *customer_reference;
	const char *billing_group_id;
} OrderFields;

extern void validate_init(void);
extern Jsonb *validate_order_request(Jsonb *ordering_groups,
									 const OrderFields *fields);
extern Jsonb *validate_row_request(Jsonb *row, Jsonb *defaults,
								   OrderFields *fields);

#endif							/* TELNYX_VALIDATE_H */
