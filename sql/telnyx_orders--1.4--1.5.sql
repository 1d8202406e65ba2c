/* telnyx_orders 1.4 -> 1.5: every promise kept where two features meet */

\echo Use "ALTER EXTENSION telnyx_orders UPDATE TO '1.5'" to load this file. \quit

/*---- Claims, links and evidence (never twice, never forgotten) ----*/

/*---- Restores and drops (nothing lost, nothing fired) ----*/

/*---- Facts only move forward ----*/

/*---- The API key is never a SQL value ----*/

/*---- Grants and status ----*/
