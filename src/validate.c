/*-------------------------------------------------------------------------
 *
 * validate.c
 *	  Check ordering groups and order fields, and build the request body.
 *
 * Everything the caller gives is checked before anything is sent: an order
 * spends money, so a typo must be an error, never a silently dropped key.
 * Every message names the ordering group (counting from 1) and the field.
 * The result is the exact JSON body to POST, in the API's spelling:
 * count_requested as a string, country_iso upper case, the flat
 * "phone_number[starts_with]" response spelling folded into the nested
 * "phone_number" object, JSON nulls dropped (a NULL column means "no
 * criterion"), digits given as a JSON number sent as a string.
 *
 * phone_number_type is free text in the spec, so a typo ("locale") would be
 * sent and Telnyx's answer is the only check.  Only the types Telnyx
 * documents are accepted, and those named in telnyx.extra_number_types, so
 * that a type Telnyx adds later can be ordered without a new release.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "errcodes.h"
#include "validate.h"

/*---- GUC variables ----*/

static char *telnyx_extra_number_types = NULL;

/*---- Local variables ----*/

/* The values of phone_number_type Telnyx documents. */
static const char *const number_types[] = {
	"local", "toll_free", "mobile", "national", "shared_cost", "landline"
};

/* Keys an ordering group may have, in the order the hint lists them. */
static const char *const group_keys[] = {
	"country_iso",
	"phone_number_type",
	"count_requested",
	"national_destination_code",
	"administrative_area",
	"locality",
	"features",
	"phone_number",
	"phone_number[starts_with]",
	"phone_number[ends_with]",
	"phone_number[contains]",
	"strategy",
	"quickship",
	"exclude_held_numbers",
};

/* The filters of "phone_number", and their flat spelling. */
static const char *const phone_number_keys[] = {
	"starts_with", "ends_with", "contains"
};
static const char *const phone_number_flat_keys[] = {
	"phone_number[starts_with]", "phone_number[ends_with]", "phone_number[contains]"
};

/*---- Function declarations ----*/

static int	validate_group(JsonbContainer *group, int n, JsonbParseState **st);
static void check_group_keys(JsonbContainer *group, int n);
static JsonbValue *group_field(JsonbContainer *group, const char *key,
							   JsonbValue *buf);
static char *group_string(JsonbContainer *group, int n, const char *key,
						  bool required, bool digits);
static bool group_boolean(JsonbContainer *group, int n, const char *key,
						  bool *value);
static int	group_count_requested(JsonbContainer *group, int n);
static void push_phone_number(JsonbContainer *group, int n, JsonbParseState **st);
static void push_features(JsonbContainer *group, int n, JsonbParseState **st);
static void push_key(JsonbParseState **st, const char *key);
static void push_string(JsonbParseState **st, const char *key, const char *value);
static void push_bool(JsonbParseState **st, const char *key, bool value);
static char *digits_value(JsonbValue *v, int n, const char *field);
static void check_number_type(const char *type, int n);
static bool check_extra_number_types(char **newval, void **extra,
									 GucSource source);
static bool all_digits(const char *s, int len);
static char *accepted_keys(void);
static bool key_in(const char *const *keys, int nkeys, const char *key, int len);
static Jsonb *pick_group_fields(JsonbContainer *obj, bool from_row);
static Jsonb *with_defaults(Jsonb *defaults, JsonbValue *group);
static const char *row_text(JsonbContainer *row, JsonbContainer *defaults,
							const char *key);

/*
 * validate_init
 *		From _PG_init: telnyx.extra_number_types.
 *
 * A user setting: the list guards against a typo, not against a privilege
 * (a role that may order may order any documented type, at the same cost),
 * so an application can adopt a new type without a superuser.
 */
void
validate_init(void)
{
	DefineCustomStringVariable("telnyx.extra_number_types",
							   "Values of \"phone_number_type\" accepted besides the ones Telnyx documents.",
							   "A comma-separated list, such as \"premium,satellite\".",
							   &telnyx_extra_number_types,
							   "",
							   PGC_USERSET,
							   GUC_LIST_INPUT,
							   check_extra_number_types, NULL, NULL);
}

/*
 * validate_order_request
 *		Check ordering_groups (a JSON array of group objects, or one group
 *		object) and the order-level fields; return the request body.
 *
 * Raises invalid_parameter_value, naming group and field, on any problem.
 * The result is palloc'd in the current memory context.
 */
Jsonb *
validate_order_request(Jsonb *ordering_groups, const OrderFields *fields)
{
	JsonbParseState *st = NULL;
	JsonbValue *res;
	JsonbContainer *root;
	int			total = 0;
	struct
	{
		const char *key;
		const char *value;
	}			top[4];
	int			i;

	if (ordering_groups == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"ordering_groups\" must not be null")));

	root = &ordering_groups->root;
	if (JB_ROOT_IS_SCALAR(ordering_groups))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"ordering_groups\" must be a JSON array of objects or a single object")));

	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	push_key(&st, "ordering_groups");
	pushJsonbValue(&st, WJB_BEGIN_ARRAY, NULL);

	if (JB_ROOT_IS_OBJECT(ordering_groups))
		total = validate_group(root, 1, &st);
	else
	{
		int			ngroups = JsonContainerSize(root);

		if (ngroups == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("\"ordering_groups\" must not be empty")));

		for (i = 0; i < ngroups; i++)
		{
			JsonbValue *elem = getIthJsonbValueFromContainer(root, i);

			if (elem->type != jbvBinary ||
				!JsonContainerIsObject(elem->val.binary.data))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("ordering group %d must be a JSON object", i + 1)));
			total += validate_group(elem->val.binary.data, i + 1, &st);
			if (total > TELNYX_MAX_COUNT_REQUESTED)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("ordering groups request more than %d numbers in total",
								TELNYX_MAX_COUNT_REQUESTED),
						 errdetail("Groups 1 to %d alone request %d numbers.", i + 1, total),
						 errhint("Split the request into several orders.")));
		}
	}
	pushJsonbValue(&st, WJB_END_ARRAY, NULL);

	top[0].key = "connection_id";
	top[0].value = fields->connection_id;
	top[1].key = "messaging_profile_id";
	top[1].value = fields->messaging_profile_id;
	top[2].key = "customer_reference";
	top[2].value = fields->customer_reference;
	top[3].key = "billing_group_id";
	top[3].value = fields->billing_group_id;
	for (i = 0; i < lengthof(top); i++)
	{
		if (top[i].value == NULL)
			continue;
		if (top[i].value[0] == '\0')
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("\"%s\" must not be an empty string", top[i].key),
					 errhint("Pass NULL to leave it out.")));
		if (strlen(top[i].value) > TELNYX_MAX_FIELD_LEN)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("\"%s\" must be at most %d bytes long",
							top[i].key, TELNYX_MAX_FIELD_LEN),
					 errdetail("It is %zu bytes long.", strlen(top[i].value))));
		push_string(&st, top[i].key, top[i].value);
	}

	res = pushJsonbValue(&st, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(res);
}

/*
 * Check group n and push it, normalised, as the next array element.
 * Returns its count_requested.
 */
static int
validate_group(JsonbContainer *group, int n, JsonbParseState **st)
{
	char	   *s;
	int			count;
	bool		b;
	static const char *const optional_strings[] = {
		"national_destination_code", "administrative_area", "locality"
	};
	int			i;

	check_group_keys(group, n);

	pushJsonbValue(st, WJB_BEGIN_OBJECT, NULL);

	s = group_string(group, n, "country_iso", true, false);
	for (i = 0; s[i]; i++)
		s[i] = pg_ascii_toupper((unsigned char) s[i]);
	if (strcmp(s, "US") != 0 && strcmp(s, "CA") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ordering group %d: \"country_iso\" must be \"US\" or \"CA\"", n),
				 errdetail("Telnyx sells inexplicit orders in the US and Canada only.")));
	push_string(st, "country_iso", s);

	s = group_string(group, n, "phone_number_type", true, false);
	check_number_type(s, n);
	push_string(st, "phone_number_type", s);

	count = group_count_requested(group, n);
	push_string(st, "count_requested", psprintf("%d", count));

	for (i = 0; i < lengthof(optional_strings); i++)
	{
		s = group_string(group, n, optional_strings[i], false,
						 strcmp(optional_strings[i], "national_destination_code") == 0);
		if (s != NULL)
			push_string(st, optional_strings[i], s);
	}

	push_features(group, n, st);
	push_phone_number(group, n, st);

	s = group_string(group, n, "strategy", false, false);
	if (s != NULL)
	{
		if (strcmp(s, "always") != 0 && strcmp(s, "never") != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("ordering group %d: \"strategy\" must be \"always\" or \"never\"", n)));
		push_string(st, "strategy", s);
	}

	if (group_boolean(group, n, "quickship", &b))
		push_bool(st, "quickship", b);
	if (group_boolean(group, n, "exclude_held_numbers", &b))
		push_bool(st, "exclude_held_numbers", b);

	pushJsonbValue(st, WJB_END_OBJECT, NULL);
	return count;
}

/* The order-level fields a trigger takes from a row. */
static const char *const order_keys[] = {
	"connection_id", "messaging_profile_id", "customer_reference", "billing_group_id"
};

/*
 * validate_row_request
 *		The ordering groups and order fields of a row of a table with
 *		telnyx_order_trigger.  row is the row as jsonb; defaults, the
 *		trigger's argument, or NULL.
 *
 * A jsonb column "ordering_groups" gives the groups; otherwise one group is
 * made of the columns named like group fields.  Order-level fields come
 * from same-named columns.  A field the row lacks (or has NULL) is taken
 * from defaults.  Other columns are ignored.  Fills *fields and returns the
 * ordering groups, for validate_order_request to check.
 */
Jsonb *
validate_row_request(Jsonb *row, Jsonb *defaults, OrderFields *fields)
{
	JsonbContainer *defs = NULL;
	JsonbValue	buf;
	JsonbValue *groups;
	Jsonb	   *group_defaults = NULL;

	if (defaults != NULL)
	{
		JsonbIterator *it;
		JsonbValue	v;
		JsonbIteratorToken tok;

		if (!JB_ROOT_IS_OBJECT(defaults) || JB_ROOT_IS_SCALAR(defaults))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the argument of telnyx_order_trigger must be a JSON object of default fields")));
		defs = &defaults->root;
		it = JsonbIteratorInit(defs);
		while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		{
			if (tok != WJB_KEY)
				continue;
			if (!key_in(group_keys, lengthof(group_keys), v.val.string.val, v.val.string.len) &&
				!key_in(order_keys, lengthof(order_keys), v.val.string.val, v.val.string.len))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("the argument of telnyx_order_trigger has unrecognized key \"%.*s\"",
								v.val.string.len, v.val.string.val),
						 errhint("Accepted keys are %s, \"connection_id\", \"messaging_profile_id\", \"customer_reference\" and \"billing_group_id\".",
								 accepted_keys())));
		}
		group_defaults = pick_group_fields(defs, false);
	}

	fields->connection_id = row_text(&row->root, defs, "connection_id");
	fields->messaging_profile_id = row_text(&row->root, defs, "messaging_profile_id");
	fields->customer_reference = row_text(&row->root, defs, "customer_reference");
	fields->billing_group_id = row_text(&row->root, defs, "billing_group_id");

	groups = getKeyJsonValueFromContainer(&row->root, "ordering_groups",
										  strlen("ordering_groups"), &buf);
	if (groups == NULL || groups->type == jbvNull)
	{
		/* one group from the columns */
		Jsonb	   *group = pick_group_fields(&row->root, true);
		JsonbValue	gv;

		gv.type = jbvBinary;
		gv.val.binary.data = &group->root;
		gv.val.binary.len = VARSIZE(group) - VARHDRSZ;
		return with_defaults(group_defaults, &gv);
	}

	if (groups->type != jbvBinary)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("column \"ordering_groups\" must hold a JSON array of objects or a single object")));

	if (JsonContainerIsObject(groups->val.binary.data))
		return with_defaults(group_defaults, groups);
	else
	{
		JsonbContainer *arr = groups->val.binary.data;
		JsonbParseState *st = NULL;
		int			n = JsonContainerSize(arr);
		int			i;

		pushJsonbValue(&st, WJB_BEGIN_ARRAY, NULL);
		for (i = 0; i < n; i++)
		{
			JsonbValue *e = getIthJsonbValueFromContainer(arr, i);
			Jsonb	   *g;
			JsonbValue	gv;

			/* validate_order_request reports what is not an object */
			if (e->type != jbvBinary || !JsonContainerIsObject(e->val.binary.data))
			{
				pushJsonbValue(&st, WJB_ELEM, e);
				continue;
			}
			g = with_defaults(group_defaults, e);
			gv.type = jbvBinary;
			gv.val.binary.data = &g->root;
			gv.val.binary.len = VARSIZE(g) - VARHDRSZ;
			pushJsonbValue(&st, WJB_ELEM, &gv);
		}
		return JsonbValueToJsonb(pushJsonbValue(&st, WJB_END_ARRAY, NULL));
	}
}

/* group with the defaults it lacks: defaults || group. */
static Jsonb *
with_defaults(Jsonb *defaults, JsonbValue *group)
{
	Jsonb	   *g = JsonbValueToJsonb(group);

	if (defaults == NULL)
		return g;
	return DatumGetJsonbP(DirectFunctionCall2(jsonb_concat,
											  JsonbPGetDatum(defaults),
											  JsonbPGetDatum(g)));
}

/*
 * The ordering group fields of obj, as an object.  From a row, JSON nulls
 * (NULL columns) are left out, so that defaults can fill them.
 */
static Jsonb *
pick_group_fields(JsonbContainer *obj, bool from_row)
{
	JsonbParseState *st = NULL;
	int			i;

	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	for (i = 0; i < lengthof(group_keys); i++)
	{
		JsonbValue	buf;
		JsonbValue *v = getKeyJsonValueFromContainer(obj, group_keys[i],
													 strlen(group_keys[i]), &buf);

		if (v == NULL || (from_row && v->type == jbvNull))
			continue;
		push_key(&st, group_keys[i]);
		pushJsonbValue(&st, WJB_VALUE, v);
	}
	return JsonbValueToJsonb(pushJsonbValue(&st, WJB_END_OBJECT, NULL));
}

/* An order-level field from the row, else from defaults; NULL if neither. */
static const char *
row_text(JsonbContainer *row, JsonbContainer *defaults, const char *key)
{
	JsonbValue	buf;
	JsonbValue *v = getKeyJsonValueFromContainer(row, key, strlen(key), &buf);

	if ((v == NULL || v->type == jbvNull) && defaults != NULL)
		v = getKeyJsonValueFromContainer(defaults, key, strlen(key), &buf);
	if (v == NULL || v->type == jbvNull)
		return NULL;
	if (v->type == jbvString)
		return pnstrdup(v->val.string.val, v->val.string.len);
	if (v->type == jbvNumeric)
		return DatumGetCString(DirectFunctionCall1(numeric_out,
												   NumericGetDatum(v->val.numeric)));
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("\"%s\" must be a string", key)));
	return NULL;				/* keep compiler quiet */
}

/* Is key (len bytes, not NUL-terminated) one of keys[0..nkeys-1]? */
static bool
key_in(const char *const *keys, int nkeys, const char *key, int len)
{
	int			i;

	for (i = 0; i < nkeys; i++)
		if (strlen(keys[i]) == (size_t) len && memcmp(keys[i], key, len) == 0)
			return true;
	return false;
}

/* Refuse any key that is not an ordering group field. */
static void
check_group_keys(JsonbContainer *group, int n)
{
	JsonbIterator *it = JsonbIteratorInit(group);
	JsonbValue	v;
	JsonbIteratorToken tok;

	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok != WJB_KEY)
			continue;
		if (!key_in(group_keys, lengthof(group_keys), v.val.string.val, v.val.string.len))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("ordering group %d has unrecognized key \"%.*s\"",
							n, v.val.string.len, v.val.string.val),
					 errhint("Accepted keys are %s.", accepted_keys())));
	}
}

/* The accepted keys as a quoted, comma-separated list. */
static char *
accepted_keys(void)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	for (i = 0; i < lengthof(group_keys); i++)
		appendStringInfo(&buf, "%s\"%s\"", i > 0 ? ", " : "", group_keys[i]);
	return buf.data;
}

/* Look key up in group; a JSON null counts as absent. */
static JsonbValue *
group_field(JsonbContainer *group, const char *key, JsonbValue *buf)
{
	JsonbValue *v = getKeyJsonValueFromContainer(group, key, strlen(key), buf);

	if (v == NULL || v->type == jbvNull)
		return NULL;
	return v;
}

/*
 * The non-empty string field key of group n, palloc'd; NULL if absent and
 * not required.  With digits, only decimal digits are accepted (see
 * digits_value).
 */
static char *
group_string(JsonbContainer *group, int n, const char *key, bool required,
			 bool digits)
{
	JsonbValue	buf;
	JsonbValue *v = group_field(group, key, &buf);

	if (v == NULL)
	{
		if (required)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("ordering group %d is missing \"%s\"", n, key)));
		return NULL;
	}
	if (digits)
		return digits_value(v, n, key);
	if (v->type != jbvString)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ordering group %d: \"%s\" must be a string", n, key)));
	if (v->val.string.len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ordering group %d: \"%s\" must not be empty", n, key)));
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/* The boolean field key of group n; false if absent. */
static bool
group_boolean(JsonbContainer *group, int n, const char *key, bool *value)
{
	JsonbValue	buf;
	JsonbValue *v = group_field(group, key, &buf);

	if (v == NULL)
		return false;
	if (v->type != jbvBool)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ordering group %d: \"%s\" must be true or false", n, key)));
	*value = v->val.boolean;
	return true;
}

/*
 * count_requested of group n: a JSON integer or a string of digits, from 1
 * to TELNYX_MAX_COUNT_REQUESTED.
 */
static int
group_count_requested(JsonbContainer *group, int n)
{
	JsonbValue	buf;
	JsonbValue *v = group_field(group, "count_requested", &buf);
	const char *digits = NULL;
	int			len = 0;
	int			count = 0;
	int			i;

	if (v == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ordering group %d is missing \"count_requested\"", n)));

	if (v->type == jbvString)
	{
		digits = v->val.string.val;
		len = v->val.string.len;
	}
	else if (v->type == jbvNumeric)
	{
		digits = DatumGetCString(DirectFunctionCall1(numeric_out,
													 NumericGetDatum(v->val.numeric)));
		len = strlen(digits);
	}

	/* skip leading zeros; more than five digits is out of range anyway */
	while (digits != NULL && len > 1 && digits[0] == '0')
	{
		digits++;
		len--;
	}
	if (digits != NULL && len > 0 && len <= 5 && all_digits(digits, len))
	{
		for (i = 0; i < len; i++)
			count = count * 10 + (digits[i] - '0');
	}
	if (count < 1 || count > TELNYX_MAX_COUNT_REQUESTED)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ordering group %d: \"count_requested\" must be an integer between 1 and %d",
						n, TELNYX_MAX_COUNT_REQUESTED)));
	return count;
}

/*
 * Push "phone_number": {starts_with, ends_with, contains}, taken from the
 * nested object and the flat "phone_number[...]" keys.
 */
static void
push_phone_number(JsonbContainer *group, int n, JsonbParseState **st)
{
	JsonbValue	buf;
	JsonbValue *nested = group_field(group, "phone_number", &buf);
	JsonbContainer *obj = NULL;
	char	   *values[lengthof(phone_number_keys)];
	bool		any = false;
	int			i;

	if (nested != NULL)
	{
		JsonbIterator *it;
		JsonbValue	v;
		JsonbIteratorToken tok;

		if (nested->type != jbvBinary || !JsonContainerIsObject(nested->val.binary.data))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("ordering group %d: \"phone_number\" must be a JSON object", n),
					 errhint("Accepted keys are \"starts_with\", \"ends_with\" and \"contains\".")));
		obj = nested->val.binary.data;

		it = JsonbIteratorInit(obj);
		while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		{
			if (tok != WJB_KEY)
				continue;
			if (!key_in(phone_number_keys, lengthof(phone_number_keys),
						v.val.string.val, v.val.string.len))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("ordering group %d: \"phone_number\" has unrecognized key \"%.*s\"",
								n, v.val.string.len, v.val.string.val),
						 errhint("Accepted keys are \"starts_with\", \"ends_with\" and \"contains\".")));
		}
	}

	for (i = 0; i < lengthof(phone_number_keys); i++)
	{
		char	   *flat = group_string(group, n, phone_number_flat_keys[i], false, true);
		char	   *inner = NULL;

		if (obj != NULL)
		{
			char	   *field = psprintf("phone_number.%s", phone_number_keys[i]);
			JsonbValue	vbuf;
			JsonbValue *v = group_field(obj, phone_number_keys[i], &vbuf);

			if (v != NULL)
				inner = digits_value(v, n, field);
		}
		if (flat != NULL && inner != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("ordering group %d gives \"%s\" twice", n, phone_number_flat_keys[i]),
					 errdetail("It is set both as \"phone_number.%s\" and as \"%s\".",
							   phone_number_keys[i], phone_number_flat_keys[i])));
		values[i] = flat != NULL ? flat : inner;
		any |= values[i] != NULL;
	}

	if (!any)
		return;
	push_key(st, "phone_number");
	pushJsonbValue(st, WJB_BEGIN_OBJECT, NULL);
	for (i = 0; i < lengthof(phone_number_keys); i++)
		if (values[i] != NULL)
			push_string(st, phone_number_keys[i], values[i]);
	pushJsonbValue(st, WJB_END_OBJECT, NULL);
}

/* Push "features": an array of non-empty strings. */
static void
push_features(JsonbContainer *group, int n, JsonbParseState **st)
{
	JsonbValue	buf;
	JsonbValue *v = group_field(group, "features", &buf);
	JsonbContainer *arr;
	int			count;
	int			i;

	if (v == NULL)
		return;
	if (v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ordering group %d: \"features\" must be an array of strings", n)));
	arr = v->val.binary.data;
	count = JsonContainerSize(arr);

	push_key(st, "features");
	pushJsonbValue(st, WJB_BEGIN_ARRAY, NULL);
	for (i = 0; i < count; i++)
	{
		JsonbValue *elem = getIthJsonbValueFromContainer(arr, i);

		if (elem->type != jbvString || elem->val.string.len == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("ordering group %d: \"features\" must be an array of strings", n),
					 errdetail("Element %d is not a non-empty string.", i + 1)));
		pushJsonbValue(st, WJB_ELEM, elem);
	}
	pushJsonbValue(st, WJB_END_ARRAY, NULL);
}

static void
push_key(JsonbParseState **st, const char *key)
{
	JsonbValue	k;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	pushJsonbValue(st, WJB_KEY, &k);
}

static void
push_string(JsonbParseState **st, const char *key, const char *value)
{
	JsonbValue	v;

	push_key(st, key);
	v.type = jbvString;
	v.val.string.val = (char *) value;
	v.val.string.len = strlen(value);
	pushJsonbValue(st, WJB_VALUE, &v);
}

static void
push_bool(JsonbParseState **st, const char *key, bool value)
{
	JsonbValue	v;

	push_key(st, key);
	v.type = jbvBool;
	v.val.boolean = value;
	pushJsonbValue(st, WJB_VALUE, &v);
}

/*
 * The digits of field of group n, palloc'd: a non-empty string of decimal
 * digits, or a JSON number that is a whole number without a sign (the API
 * wants a string, and "national_destination_code": 312 means "312").  The
 * number's digits are as jsonb keeps them: 1e3 has become 1000 by now,
 * 1.5e3 1500, and 3.0 keeps its fraction.
 */
static char *
digits_value(JsonbValue *v, int n, const char *field)
{
	if (v->type == jbvNumeric)
	{
		char	   *num = DatumGetCString(DirectFunctionCall1(numeric_out,
															  NumericGetDatum(v->val.numeric)));

		if (!all_digits(num, strlen(num)))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("ordering group %d: \"%s\" must be a string of digits", n, field),
					 errdetail("The number %s has a sign or a fraction.", num),
					 errhint("Give the digits as a string, or as a whole number without a sign.")));
		return num;
	}
	if (v->type != jbvString || v->val.string.len == 0 ||
		!all_digits(v->val.string.val, v->val.string.len))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ordering group %d: \"%s\" must be a string of digits", n, field)));
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/*
 * Refuse a phone_number_type that Telnyx does not document and
 * telnyx.extra_number_types does not name: a typo would be sent as is.
 */
static void
check_number_type(const char *type, int n)
{
	char	   *list;
	char	   *item;
	char	   *save;
	int			i;

	for (i = 0; i < lengthof(number_types); i++)
		if (strcmp(type, number_types[i]) == 0)
			return;

	list = pstrdup(telnyx_extra_number_types ? telnyx_extra_number_types : "");
	for (item = strtok_r(list, ",", &save); item != NULL;
		 item = strtok_r(NULL, ",", &save))
	{
		char	   *end;

		while (*item == ' ' || *item == '\t')
			item++;
		end = item + strlen(item);
		while (end > item && (end[-1] == ' ' || end[-1] == '\t'))
			*--end = '\0';
		if (strcmp(type, item) == 0)
			return;
	}

	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("ordering group %d: unrecognized \"phone_number_type\" \"%s\"",
					n, type),
			 errhint("Telnyx documents \"local\", \"toll_free\", \"mobile\", \"national\", \"shared_cost\" and \"landline\". To order a type Telnyx added since, name it in \"telnyx.extra_number_types\".")));
}

/* telnyx.extra_number_types: names without quotes or control characters. */
static bool
check_extra_number_types(char **newval, void **extra, GucSource source)
{
	const char *c;

	for (c = *newval; c != NULL && *c; c++)
		if ((unsigned char) *c < 0x20 || *c == '"' || *c == '\\')
		{
			GUC_check_errdetail("The list holds a quote, a backslash or a control character.");
			return false;
		}
	return true;
}

static bool
all_digits(const char *s, int len)
{
	int			i;

	for (i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}
