/*
 * The simulator's C helper: kubesim_start gives a TLS endpoint, a token and a kubeconfig that
 * work; the control API seeds VMs that a plain client then lists; stats count requests;
 * kubesim_stop leaves nothing behind.
 */
#include "config.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <jansson.h>

#include "buf.h"
#include "kubesim-proc.h"

TestSuite(kubesim, .timeout = 60);

static size_t collect(char *data, size_t size, size_t n, void *cls)
{
	return shp_buf_addn(cls, data, size * n) < 0 ? 0 : size * n;
}

/* GET path with the proc's token and CA; the body as JSON, the status in *code. */
static json_t *get(struct kubesim_proc *p, const char *path, const char *token, long *code)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL;
	struct shp_buf b = SHP_BUF_INIT(1 << 24);
	char url[512], auth[96];
	json_t *j;

	(void)snprintf(url, sizeof(url), "%s%s", p->url, path);
	(void)snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
	h = curl_slist_append(h, auth);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_CAINFO, p->ca_pem);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	cr_assert_eq(curl_easy_perform(c), CURLE_OK);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, code);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	j = json_loads(b.buf, 0, NULL);
	shp_buf_release(&b);
	return j;
}

Test(kubesim, start_seed_list_stop)
{
	const char *const args[] = {"--tick-ms", "20", "--nodes", "2", NULL};
	struct kubesim_proc p;
	char *body = NULL;
	json_t *j;
	long code = 0;
	struct stat st;
	char dir[256];

	cr_assert_eq(kubesim_start(&p, args), 0);
	cr_assert(strncmp(p.url, "https://127.0.0.1:", 18) == 0);
	cr_assert(strstr(p.kubeconfig, "certificate-authority-data: LS0t"));
	cr_assert(strstr(p.kubeconfig, p.token));
	cr_assert_eq(kubesim_ctl(&p, "/_sim/seed",
				 "{\"namespace\":\"t1\",\"vms\":3,\"running\":true,"
				 "\"labels\":{\"team\":\"a\"}}"),
		     200);

	j = get(&p, "/apis/kubevirt.io/v1/namespaces/t1/virtualmachines?labelSelector=team%3Da",
		p.token, &code);
	cr_assert_eq(code, 200);
	cr_assert_eq(json_array_size(json_object_get(j, "items")), 3);
	cr_assert_str_eq(
		json_string_value(json_object_get(
			json_object_get(json_array_get(json_object_get(j, "items"), 0), "status"),
			"printableStatus")),
		"Running");
	json_decref(j);

	j = get(&p, "/api/v1/nodes", "wrong-token", &code);
	cr_assert_eq(code, 401);
	json_decref(j);

	cr_assert_eq(kubesim_ctl_body(&p, "stats", NULL, &body), 200);
	j = json_loads(body, 0, NULL);
	cr_assert_geq(json_integer_value(json_object_get(j, "requests")), 3);
	json_decref(j);
	free(body);

	(void)snprintf(dir, sizeof(dir), "%s", p.dir);
	kubesim_stop(&p);
	cr_assert_neq(stat(dir, &st), 0);
	kubesim_stop(&p); /* idempotent */
}
