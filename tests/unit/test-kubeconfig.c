/*
 * kubeconfig parsing: the context resolved to its cluster and user, inline credentials decoded,
 * and hostile or unusable input refused with a message that never carries a secret.
 */
#include "config.h"

#include <string.h>

#include <criterion/criterion.h>

#include "error.h"
#include "kubeconfig.h"

#define CA "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUIKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo="
#define KEY                                                                                        \
	"LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0tCnNlY3JldGtleQotLS0tLUVORCBQUklWQVRFIEtFWS0tLS0tCg=="
#define NOTPEM "aGVsbG8gd29ybGQ="

static const char good[] = "apiVersion: v1\n"
			   "kind: Config\n"
			   "current-context: ctx1\n"
			   "clusters:\n"
			   "- name: c1\n"
			   "  cluster:\n"
			   "    server: https://api.example:6443\n"
			   "    certificate-authority-data: " CA "\n"
			   "    tls-server-name: api.internal\n"
			   "- name: c2\n"
			   "  cluster: {server: https://other:6443}\n"
			   "users:\n"
			   "- name: u1\n"
			   "  user: {token: s3cr3t-token}\n"
			   "- name: u2\n"
			   "  user: {client-certificate-data: " CA ", client-key-data: " KEY "}\n"
			   "contexts:\n"
			   "- name: ctx1\n"
			   "  context: {cluster: c1, user: u1, namespace: team-a}\n"
			   "- name: ctx2\n"
			   "  context: {cluster: c2, user: u2}\n";

Test(kubeconfig, current_context_with_token)
{
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_kubeconfig *k = shd_kubeconfig_parse(good, sizeof(good) - 1, NULL, false, &err);

	cr_assert_not_null(k, "%s", err.msg);
	cr_expect_str_eq(k->context, "ctx1");
	cr_expect_str_eq(k->server, "https://api.example:6443");
	cr_expect_str_eq(k->namespace_, "team-a");
	cr_expect_str_eq(k->tls_server_name, "api.internal");
	cr_expect_str_eq(k->token, "s3cr3t-token");
	cr_expect(strncmp(k->ca_pem, "-----BEGIN CERTIFICATE-----\n", 28) == 0, "%s", k->ca_pem);
	cr_expect_null(k->client_cert_pem);
	cr_expect(!k->insecure);
	shd_kubeconfig_free(k);
}

Test(kubeconfig, named_context_with_client_certificate)
{
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_kubeconfig *k =
		shd_kubeconfig_parse(good, sizeof(good) - 1, "ctx2", false, &err);

	cr_assert_not_null(k, "%s", err.msg);
	cr_expect_str_eq(k->server, "https://other:6443");
	cr_expect_str_eq(k->namespace_, "default");
	cr_expect_null(k->token);
	cr_expect_null(k->ca_pem, "no CA data: the system's CAs");
	cr_expect(strstr(k->client_key_pem, "secretkey"));
	cr_expect(strstr(k->client_cert_pem, "BEGIN CERTIFICATE"));
	shd_kubeconfig_free(k);
}

struct bad_case {
	const char *text;
	const char *msg_has;
};

static const struct bad_case bad[] = {
	{"just a string", "not a mapping"},
	{"[1, 2]", "not a mapping"},
	{"a: &x 1\nb: *x\n", "kubeconfig"},
	{"clusters: []\n", "current-context"},
	{"current-context: nope\ncontexts: []\n", "no contexts named 'nope'"},
	{"current-context: c\ncontexts: 7\n", "must be a list"},
	{"current-context: c\ncontexts: [{context: {}}]\n", "has no name"},
	{"current-context: c\ncontexts: [{name: c}]\n", "is empty"},
	{"current-context: c\ncontexts: [{name: c, context: {cluster: x}}]\n",
	 "needs a cluster and a user"},
	{"current-context: c\ncontexts: [{name: c, context: {cluster: x, user: u}}, {name: c, "
	 "context: {cluster: x, user: u}}]\n",
	 "two contexts"},
	{"current-context: c\ncontexts: [{name: c, context: {cluster: x, user: u}}]\n",
	 "no clusters named 'x'"},
	{"current-context: c\ncontexts: [{name: c, context: {cluster: x, user: u, namespace: "
	 "7}}]\n",
	 "namespace must be a string"},
	{"current-context: c\ncontexts: [{name: c, context: {cluster: x, user: u}}]\nclusters: "
	 "[{name: x, cluster: {server: 'http://plain:80'}}]\nusers: [{name: u, user: {token: "
	 "t}}]\n",
	 "not https"},
	{"current-context: c\ncontexts: [{name: c, context: {cluster: x, user: u}}]\nclusters: "
	 "[{name: x, cluster: {server: 'https://a', insecure-skip-tls-verify: true}}]\nusers: "
	 "[{name: u, user: {token: t}}]\n",
	 "skips TLS verification"},
	{"current-context: c\ncontexts: [{name: c, context: {cluster: x, user: u}}]\nclusters: "
	 "[{name: x, cluster: {server: 'https://a', insecure-skip-tls-verify: 'yes'}}]\nusers: "
	 "[{name: u, user: {token: t}}]\n",
	 "true or false"},
	{"current-context: c\ncontexts: [{name: c, context: {cluster: x, user: u}}]\nclusters: "
	 "[{name: x, cluster: {server: 'https://a', certificate-authority: /etc/ca.crt}}]\nusers: "
	 "[{name: u, user: {token: t}}]\n",
	 "certificate-authority names a file"},
	{"current-context: c\ncontexts: [{name: c, context: {cluster: x, user: u}}]\nclusters: "
	 "[{name: x, cluster: {server: 'https://a', certificate-authority-data: '%%%%'}}]\nusers: "
	 "[{name: u, user: {token: t}}]\n",
	 "not valid base64"},
	{"current-context: c\ncontexts: [{name: c, context: {cluster: x, user: u}}]\nclusters: "
	 "[{name: x, cluster: {server: 'https://a', certificate-authority-data: " NOTPEM
	 "}}]\nusers: [{name: u, user: {token: t}}]\n",
	 "not a PEM block"},
	{"current-context: c\ncontexts: [{name: c, context: {cluster: x, user: u}}]\nclusters: "
	 "[{name: x, cluster: {server: 'https://a'}}]\nusers: [{name: u, user: {exec: {command: "
	 "aws}}}]\n",
	 "user.exec names a file or a plugin"},
	{"current-context: c\ncontexts: [{name: c, context: {cluster: x, user: u}}]\nclusters: "
	 "[{name: x, cluster: {server: 'https://a'}}]\nusers: [{name: u, user: {username: admin, "
	 "password: hunter2}}]\n",
	 "user.username"},
	{"current-context: c\ncontexts: [{name: c, context: {cluster: x, user: u}}]\nclusters: "
	 "[{name: x, cluster: {server: 'https://a'}}]\nusers: [{name: u, user: {}}]\n",
	 "neither a token"},
	{"current-context: c\ncontexts: [{name: c, context: {cluster: x, user: u}}]\nclusters: "
	 "[{name: x, cluster: {server: 'https://a'}}]\nusers: [{name: u, user: "
	 "{client-certificate-data: " CA "}}]\n",
	 "needs its key"},
	{"current-context: c\ncontexts: [{name: c, context: {cluster: x, user: u}}]\nclusters: "
	 "[{name: x, cluster: {server: 'https://a'}}]\nusers: [{name: u, user: {token: "
	 "[s3cr3t]}}]\n",
	 "token must be a string"},
};

Test(kubeconfig, hostile_and_unusable_input)
{
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct shp_error err = SHP_ERROR_INIT;
		struct shd_kubeconfig *k =
			shd_kubeconfig_parse(bad[i].text, strlen(bad[i].text), NULL, false, &err);
		cr_expect_null(k, "case %zu was accepted", i);
		shd_kubeconfig_free(k);
		cr_expect(strstr(err.msg, bad[i].msg_has), "case %zu: '%s' lacks '%s'", i, err.msg,
			  bad[i].msg_has);
		cr_expect_null(strstr(err.msg, "s3cr3t"), "case %zu: a secret in '%s'", i, err.msg);
		cr_expect_null(strstr(err.msg, "hunter2"), "case %zu: a secret in '%s'", i,
			       err.msg);
	}
}

Test(kubeconfig, insecure_only_when_allowed_and_size_cap)
{
	static const char text[] =
		"current-context: c\ncontexts: [{name: c, context: {cluster: x, user: u}}]\n"
		"clusters: [{name: x, cluster: {server: 'http://127.0.0.1:8080', "
		"insecure-skip-tls-verify: true}}]\nusers: [{name: u, user: {token: t}}]\n";
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_kubeconfig *k = shd_kubeconfig_parse(text, sizeof(text) - 1, NULL, true, &err);

	cr_assert_not_null(k, "%s", err.msg);
	cr_expect(k->insecure);
	shd_kubeconfig_free(k);
	cr_expect_null(shd_kubeconfig_parse(text, SHD_KUBECONFIG_MAX + 1, NULL, true, &err));
	cr_expect_eq(err.code, SHP_E_LIMIT);
	cr_expect_null(shd_kubeconfig_free(NULL));
}
