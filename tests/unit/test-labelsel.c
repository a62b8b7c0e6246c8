/*
 * Label selectors: every operator against label sets with and without the key, whitespace,
 * prefixed keys, the caps on length and terms, malformed and hostile selectors refused with a
 * clear message, and one parsed selector shared by racing threads.
 */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "error.h"
#include "labelsel.h"

struct match_case {
	const char *sel;
	const char *labels; /* JSON object, or NULL */
	bool want;
};

static const struct match_case matches[] = {
	{NULL, "{\"a\":\"1\"}", true},
	{"", NULL, true},
	{"   \t ", "{}", true},
	{"a=1", "{\"a\":\"1\"}", true},
	{"a=1", "{\"a\":\"2\"}", false},
	{"a=1", "{}", false},
	{"a=1", NULL, false},
	{"a==1", "{\"a\":\"1\"}", true},
	{"a!=1", "{\"a\":\"1\"}", false},
	{"a!=1", "{\"a\":\"2\"}", true},
	{"a!=1", "{}", true},
	{"a=", "{\"a\":\"\"}", true},
	{"a=", "{\"a\":\"x\"}", false},
	{"a", "{\"a\":\"\"}", true},
	{"a", "{\"b\":\"x\"}", false},
	{"!a", "{\"b\":\"x\"}", true},
	{"!a", "{\"a\":\"x\"}", false},
	{"a in (x,y)", "{\"a\":\"y\"}", true},
	{"a in (x,y)", "{\"a\":\"z\"}", false},
	{"a in (x,y)", "{}", false},
	{"a in (x,)", "{\"a\":\"\"}", true},
	{"a notin (x,y)", "{\"a\":\"z\"}", true},
	{"a notin (x,y)", "{\"a\":\"x\"}", false},
	{"a notin (x,y)", "{}", true},
	{"a=1,b=2", "{\"a\":\"1\",\"b\":\"2\"}", true},
	{"a=1,b=2", "{\"a\":\"1\",\"b\":\"3\"}", false},
	{" a = 1 , b in ( 2 , 3 ) , !c ", "{\"a\":\"1\",\"b\":\"3\"}", true},
	{" a = 1 , b in ( 2 , 3 ) , !c ", "{\"a\":\"1\",\"b\":\"3\",\"c\":\"\"}", false},
	{"app.kubernetes.io/managed-by=shepherd", "{\"app.kubernetes.io/managed-by\":\"shepherd\"}",
	 true},
	{"app.kubernetes.io/managed-by=shepherd,shepherd.io/adopt=true",
	 "{\"app.kubernetes.io/managed-by\":\"shepherd\",\"shepherd.io/adopt\":\"true\"}", true},
	{"shepherd.io/adopt=true", "{\"shepherd.io/adopt\":\"false\"}", false},
	{"kubevirt.io/vmi-name==vm1", "{\"kubevirt.io/vmi-name\":\"vm1\"}", true},
	{"a=1", "{\"a\":1}", false}, /* a non-string value counts as absent */
	{"a", "{\"a\":true}", false},
	{"a!=1", "{\"a\":1}", true},
	{"A_b.c-D=X.y_z-9", "{\"A_b.c-D\":\"X.y_z-9\"}", true},
	{"in-x=notin-y", "{\"in-x\":\"notin-y\"}", true},
	{"a=1", "[]", false}, /* not an object: the empty set */
};

static void check_match(const struct match_case *c)
{
	struct shp_error err = SHP_ERROR_INIT;
	_cleanup_(shd_labelsel_freep) struct shd_labelsel *sel = shd_labelsel_parse(c->sel, &err);
	json_auto_t *labels = c->labels ? json_loads(c->labels, 0, NULL) : NULL;

	cr_assert_not_null(sel, "'%s': %s", c->sel ? c->sel : "(null)", err.msg);
	cr_assert(!c->labels || labels);
	cr_expect_eq(shd_labelsel_match(sel, labels), c->want, "'%s' on %s", c->sel ? c->sel : "",
		     c->labels ? c->labels : "NULL");
}

Test(labelsel, match)
{
	for (size_t i = 0; i < SHP_ARRAY_SIZE(matches); i++)
		check_match(&matches[i]);
}

struct bad_case {
	const char *sel;
	const char *msg_has;
};

static const struct bad_case bads[] = {
	{",", "offset 0"},
	{"a=1,", "end of selector"},
	{"a=1,,b=2", "','"},
	{"=1", "expected a label key"},
	{"a in x", "expected '('"},
	{"a in ()", "empty value set"},
	{"a in (x y)", "expected ',' or ')'"},
	{"a in (x", "end of selector"},
	{"a notin", "expected '('"},
	{"a=(b)", "expected a value"},
	{"a b", "expected '=', '==', '!=', 'in', 'notin'"},
	{"a=1 b=2", "expected ',' or the end"},
	{"!a=1", "expected ',' or the end"},
	{"!", "expected a label key"},
	{"!!a", "expected a label key"},
	{"a>1", "'<' and '>' are not supported"},
	{"a<1", "not supported"},
	{"in=1", "expected a label key"},
	{")", "expected a label key"},
	{"a=b=c", "expected ',' or the end"},
	{"-a=1", "not a qualified name"},
	{"a-=1", "not a qualified name"},
	{"a/b/c=1", "not a qualified name"},
	{"/a=1", "not a qualified name"},
	{"a/=1", "not a qualified name"},
	{"Example.COM/a=1", "not a qualified name"},
	{"ex..com/a=1", "not a qualified name"},
	{"-ex.com/a=1", "not a qualified name"},
	{"ex.com-/a=1", "not a qualified name"},
	{"a=-x", "value '-x'"},
	{"a=x-", "value"},
	{"a=x/y", "value"},
	{"a in (x,-y)", "value"},
	{"a=b\x01"
	 "c",
	 "value 'b?c'"},
	{"k\xc3\xa9=1", "key 'k?"
			"?'"},
	{"a=1;drop", "value"},
	{"a='1'", "value"},
	{"a\"b=1", "not a qualified name"},
	{"a=${x}", "value"},
	{"a=%00", "value"},
	{"a in ((x))", "expected a value, ',' or ')'"},
};

static void check_reject(const struct bad_case *c)
{
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_labelsel *sel = shd_labelsel_parse(c->sel, &err);

	cr_assert_null(sel, "'%s' was accepted", c->sel);
	cr_expect_eq(err.code, SHP_E_INVAL);
	cr_expect(strstr(err.msg, "invalid label selector") != NULL, "%s", err.msg);
	cr_expect(strstr(err.msg, c->msg_has) != NULL, "'%s': message '%s' lacks '%s'", c->sel,
		  err.msg, c->msg_has);
	for (const char *p = err.msg; *p; p++)
		cr_expect((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f,
			  "the message stays printable: %s", err.msg);
}

Test(labelsel, rejects)
{
	for (size_t i = 0; i < SHP_ARRAY_SIZE(bads); i++)
		check_reject(&bads[i]);
}

Test(labelsel, key_and_value_lengths)
{
	struct shp_error err = SHP_ERROR_INIT;
	char sel[600];
	char name63[64], name64[65], prefix253[254], prefix254[255];

	memset(name63, 'n', 63), name63[63] = '\0';
	memset(name64, 'n', 64), name64[64] = '\0';
	/* 253 = 3 labels of 63, 1 of 61, with 3 dots */
	memset(prefix253, 'p', 253), prefix253[253] = '\0';
	prefix253[63] = prefix253[127] = prefix253[191] = '.';
	memset(prefix254, 'p', 254), prefix254[254] = '\0';
	prefix254[63] = prefix254[127] = prefix254[191] = '.';

	snprintf(sel, sizeof(sel), "%s/%s=%s", prefix253, name63, name63);
	struct shd_labelsel *s = shd_labelsel_parse(sel, &err);
	cr_expect_not_null(s, "%s", err.msg);
	s = shd_labelsel_free(s);
	cr_expect_null(s);

	snprintf(sel, sizeof(sel), "%s/%s=x", prefix254, name63);
	cr_expect_null(shd_labelsel_parse(sel, &err), "a 254-byte prefix");
	snprintf(sel, sizeof(sel), "%s=x", name64);
	cr_expect_null(shd_labelsel_parse(sel, &err), "a 64-byte name");
	snprintf(sel, sizeof(sel), "x=%s", name64);
	cr_expect_null(shd_labelsel_parse(sel, &err), "a 64-byte value");
	cr_expect(strstr(err.msg, "...") != NULL, "a long token is shortened: %s", err.msg);
}

Test(labelsel, caps)
{
	struct shp_error err = SHP_ERROR_INIT;
	char *s = malloc(SHD_LABELSEL_MAX_LEN + 2);
	size_t n = 0;

	cr_assert_not_null(s);
	/* 64 terms fit, the 65th does not */
	for (int i = 0; i < SHD_LABELSEL_MAX_TERMS; i++)
		n += (size_t)snprintf(s + n, 32, "%sk%d", i ? "," : "", i);
	struct shd_labelsel *sel = shd_labelsel_parse(s, &err);
	cr_expect_not_null(sel, "%s", err.msg);
	json_auto_t *all = json_object();
	for (int i = 0; i < SHD_LABELSEL_MAX_TERMS; i++) {
		char k[16];
		snprintf(k, sizeof(k), "k%d", i);
		json_object_set_new(all, k, json_string("v"));
	}
	cr_expect(shd_labelsel_match(sel, all));
	json_object_del(all, "k63");
	cr_expect(!shd_labelsel_match(sel, all));
	sel = shd_labelsel_free(sel);
	snprintf(s + n, 32, ",k64");
	cr_expect_null(shd_labelsel_parse(s, &err));
	cr_expect(strstr(err.msg, "more than 64 terms") != NULL, "%s", err.msg);

	/* the length cap: 4096 bytes of spaces and one term pass, 4097 fail */
	memset(s, ' ', SHD_LABELSEL_MAX_LEN);
	memcpy(s + SHD_LABELSEL_MAX_LEN - 3, "a=b", 3);
	s[SHD_LABELSEL_MAX_LEN] = '\0';
	sel = shd_labelsel_parse(s, &err);
	cr_expect_not_null(sel, "%s", err.msg);
	sel = shd_labelsel_free(sel);
	s[SHD_LABELSEL_MAX_LEN] = ' ';
	s[SHD_LABELSEL_MAX_LEN + 1] = '\0';
	cr_expect_null(shd_labelsel_parse(s, &err));
	cr_expect_eq(err.code, SHP_E_INVAL);
	cr_expect(strstr(err.msg, "longer than 4096") != NULL, "%s", err.msg);
	free(s);
}

Test(labelsel, set_of_many_values_and_empty)
{
	struct shp_error err = SHP_ERROR_INIT;
	_cleanup_(shd_labelsel_freep) struct shd_labelsel *sel =
		shd_labelsel_parse("env in (dev,test,stage,prod),tier notin (db)", &err);
	json_auto_t *a = json_pack("{s:s,s:s}", "env", "prod", "tier", "web");
	json_auto_t *b = json_pack("{s:s,s:s}", "env", "prod", "tier", "db");

	cr_assert_not_null(sel, "%s", err.msg);
	cr_expect(!shd_labelsel_is_empty(sel));
	cr_expect(shd_labelsel_match(sel, a));
	cr_expect(!shd_labelsel_match(sel, b));
	cr_expect(shd_labelsel_is_empty(NULL));
	cr_expect(shd_labelsel_match(NULL, b), "a NULL selector selects everything");
	cr_expect_null(shd_labelsel_free(NULL));

	_cleanup_(shd_labelsel_freep) struct shd_labelsel *empty = shd_labelsel_parse("", &err);
	cr_assert_not_null(empty);
	cr_expect(shd_labelsel_is_empty(empty));
}

Test(labelsel, err_may_be_null)
{
	struct shd_labelsel *sel = shd_labelsel_parse("a==", NULL);
	json_auto_t *empty_a = json_pack("{s:s}", "a", "");

	cr_expect_null(shd_labelsel_parse("a in", NULL));
	cr_assert_not_null(sel, "a== is a==\"\"");
	cr_expect(shd_labelsel_match(sel, empty_a));
	shd_labelsel_free(sel);
}

struct race {
	const struct shd_labelsel *sel;
	const json_t *yes, *no;
	atomic_int wrong;
};

static void *race_thread(void *arg)
{
	struct race *r = arg;

	for (int i = 0; i < 20000; i++)
		if (!shd_labelsel_match(r->sel, r->yes) || shd_labelsel_match(r->sel, r->no))
			atomic_fetch_add(&r->wrong, 1);
	return NULL;
}

Test(labelsel, shared_by_threads)
{
	struct shp_error err = SHP_ERROR_INIT;
	_cleanup_(shd_labelsel_freep) struct shd_labelsel *sel = shd_labelsel_parse(
		"app.kubernetes.io/managed-by=shepherd,!shepherd.io/adopt", &err);
	json_auto_t *yes = json_pack("{s:s}", "app.kubernetes.io/managed-by", "shepherd");
	json_auto_t *no = json_pack("{s:s,s:s}", "app.kubernetes.io/managed-by", "shepherd",
				    "shepherd.io/adopt", "true");
	struct race r = {.sel = sel, .yes = yes, .no = no};
	pthread_t t[4];

	cr_assert_not_null(sel, "%s", err.msg);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, race_thread, &r), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	cr_expect_eq(atomic_load(&r.wrong), 0);
}

/* Every prefix of a valid selector and random bytes: no crash, and a clean verdict. */
Test(labelsel, hostile_fuzz)
{
	const char *valid = "app.kubernetes.io/managed-by in (shepherd, x), !shepherd.io/adopt";
	static const char alphabet[] = "a=!,() in notin/.-_\x01\xff";
	char buf[128];
	unsigned int seed = 7;

	for (size_t n = 0; n <= strlen(valid); n++) {
		struct shp_error err = SHP_ERROR_INIT;
		memcpy(buf, valid, n);
		buf[n] = '\0';
		struct shd_labelsel *sel = shd_labelsel_parse(buf, &err);
		cr_expect(sel || err.code == SHP_E_INVAL, "prefix %zu", n);
		shd_labelsel_free(sel);
	}
	for (int i = 0; i < 5000; i++) {
		struct shp_error err = SHP_ERROR_INIT;
		size_t n = (size_t)(rand_r(&seed) % 40);
		for (size_t k = 0; k < n; k++)
			buf[k] = alphabet[(size_t)rand_r(&seed) % (sizeof(alphabet) - 1)];
		buf[n] = '\0';
		struct shd_labelsel *sel = shd_labelsel_parse(buf, &err);
		cr_expect(sel || err.code == SHP_E_INVAL, "'%s'", buf);
		shd_labelsel_free(sel);
	}
}

Test(labelsel, key_value_and_name_checks)
{
	cr_expect(shd_label_key_is_valid("app.kubernetes.io/managed-by"));
	cr_expect(shd_label_key_is_valid("a"));
	cr_expect(!shd_label_key_is_valid(""));
	cr_expect(!shd_label_key_is_valid("a/"));
	cr_expect(!shd_label_key_is_valid("Bad.Prefix/a"));
	cr_expect(!shd_label_key_is_valid(NULL));
	cr_expect(shd_label_value_is_valid(""));
	cr_expect(shd_label_value_is_valid("v1.2_x-y"));
	cr_expect(!shd_label_value_is_valid("-v"));
	cr_expect(!shd_label_value_is_valid("a b"));
	cr_expect(!shd_label_value_is_valid(NULL));
	cr_expect(shd_dns_subdomain_is_valid("vm-1.example"));
	cr_expect(!shd_dns_subdomain_is_valid("Vm"));
	cr_expect(!shd_dns_subdomain_is_valid(""));
	cr_expect(!shd_dns_subdomain_is_valid(NULL));

	char long_name[300];
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	cr_expect(!shd_dns_subdomain_is_valid(long_name), "longer than 253");
	long_name[253] = '\0';
	cr_expect(shd_dns_subdomain_is_valid(long_name), "253: no limit per label, as the API's");
}
