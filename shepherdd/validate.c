/*
 * Pure validation of request bodies: no database, no I/O. Every check names the field it
 * refused (detail "field"), so clients can point at it. This is also the fuzz target's entry.
 */
#include "config.h"

#include <stdarg.h>
#include <string.h>

#include "api.h"
#include "error.h"
#include "json.h"
#include "kubeconfig.h"
#include "shepherdd.h"
#include "util.h"

int shd_validate_name(const char *field, const char *value, struct shp_error *err)
{
	if (shp_name_is_valid(value))
		return 0;
	if (strlen(value) > SHP_API_NAME_MAX)
		return shp_error_field(err, field,
				       "field '%s' is longer than 63 characters ('%.40s...')",
				       field, value);
	return shp_error_field(
		err, field,
		"field '%s' must be a DNS-1123 label: lower-case letters, digits and "
		"'-', starting and ending with a letter or digit (got '%.63s')",
		field, value);
}

int shd_validate_environment(const char *field, const char *value, struct shp_error *err)
{
	if (strcmp(value, SHP_ENV_TEST) == 0 || strcmp(value, SHP_ENV_PROD) == 0)
		return 0;
	return shp_error_field(err, field, "field '%s' must be 'test' or 'prod' (got '%.40s')",
			       field, value);
}

int shd_validate_text(const char *field, const char *value, size_t max, struct shp_error *err)
{
	size_t n = strlen(value);

	if (n > max) {
		shp_error_set(err, SHP_E_INVAL, "field '%s' is longer than %zu bytes", field, max);
		shp_error_detail(err, "field", "%s", field);
		return -SHP_E_INVAL;
	}
	if (!shp_utf8_is_valid(value, n))
		return shp_error_field(err, field, "field '%s' is not valid UTF-8", field);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)value[i];
		if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f)
			return shp_error_field(err, field, "field '%s' contains control characters",
					       field);
	}
	return 0;
}

int shd_validate_api_url(const char *field, const char *url, struct shp_error *err)
{
	const char *rest, *end;

	if (strlen(url) > SHP_API_URL_MAX) {
		(void)shp_error_field(err, field, "field '%s' is longer than %d bytes", field,
				      SHP_API_URL_MAX);
		shp_error_detail(err, "max_length", "%d", SHP_API_URL_MAX);
		return -SHP_E_INVAL;
	}
	if (strncmp(url, "https://", 8) == 0)
		rest = url + 8;
	else if (strncmp(url, "http://", 7) == 0)
		rest = url + 7;
	else
		return shp_error_field(err, field,
				       "field '%s' must be an http:// or https:// URL "
				       "(got '%.60s')",
				       field, url);
	for (const char *p = url; *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f)
			return shp_error_field(err, field,
					       "field '%s' must not contain spaces or control "
					       "characters",
					       field);
	end = rest + strcspn(rest, "/?#");
	if (end == rest)
		return shp_error_field(err, field, "field '%s' has no host ('%.60s')", field, url);
	if (memchr(rest, '@', (size_t)(end - rest)))
		return shp_error_field(err, field,
				       "field '%s' must not carry credentials in the URL", field);
	return 0;
}

static const char *const namespace_fields[] = {"name", "environment", "description", NULL};

int shd_validate_namespace(const json_t *body, struct shd_namespace_spec *ret,
			   struct shp_error *err)
{
	struct shd_namespace_spec s = {.description = ""};

	if (shp_json_check_fields(body, namespace_fields, err) < 0 ||
	    shp_json_get_string(body, "name", true, 256, &s.name, err) < 0 ||
	    shp_json_get_string(body, "environment", true, 64, &s.environment, err) < 0 ||
	    shp_json_get_string(body, "description", false, 4096, &s.description, err) < 0)
		return -SHP_E_INVAL;
	if (shd_validate_name("name", s.name, err) < 0 ||
	    shd_validate_environment("environment", s.environment, err) < 0 ||
	    shd_validate_text("description", s.description, SHP_API_DESCRIPTION_MAX, err) < 0)
		return -SHP_E_INVAL;
	*ret = s;
	return 0;
}

static const char *const cluster_fields[] = {"name",       "environment", "description",
					     "kubeconfig", "context",     "allow_insecure",
					     "simulated",  NULL};

/* The kubeconfig's own fields (context, allow_insecure) need a kubeconfig. */
static int validate_cluster_source(const json_t *body, const struct shd_cluster_spec *s,
				   struct shp_error *err)
{
	if (s->kubeconfig && s->simulated)
		return shp_error_field(err, "simulated",
				       "give either 'kubeconfig' or 'simulated', not both");
	if (!s->kubeconfig && !s->simulated)
		return shp_error_field(
			err, "kubeconfig",
			"a cluster needs 'kubeconfig' (the text of a kubeconfig file) "
			"or 'simulated': true");
	if (s->kubeconfig && s->kubeconfig[0] == '\0')
		return shp_error_field(err, "kubeconfig", "field 'kubeconfig' is empty");
	if (!s->kubeconfig && json_object_get(body, "context"))
		return shp_error_field(err, "context", "field 'context' needs 'kubeconfig'");
	if (!s->kubeconfig && json_object_get(body, "allow_insecure"))
		return shp_error_field(err, "allow_insecure",
				       "field 'allow_insecure' needs 'kubeconfig'");
	return 0;
}

int shd_validate_cluster(const json_t *body, struct shd_cluster_spec *ret, struct shp_error *err)
{
	struct shd_cluster_spec s = {.description = ""};

	if (shp_json_check_fields(body, cluster_fields, err) < 0 ||
	    shp_json_get_string(body, "name", true, 256, &s.name, err) < 0 ||
	    shp_json_get_string(body, "environment", true, 64, &s.environment, err) < 0 ||
	    shp_json_get_string(body, "description", false, 4096, &s.description, err) < 0 ||
	    shp_json_get_string(body, "kubeconfig", false, SHD_KUBECONFIG_MAX, &s.kubeconfig, err) <
		    0 ||
	    shp_json_get_string(body, "context", false, 253, &s.context, err) < 0 ||
	    shp_json_get_bool(body, "allow_insecure", false, &s.allow_insecure, err) < 0 ||
	    shp_json_get_bool(body, "simulated", false, &s.simulated, err) < 0)
		return -SHP_E_INVAL;
	if (shd_validate_name("name", s.name, err) < 0 ||
	    shd_validate_environment("environment", s.environment, err) < 0 ||
	    shd_validate_text("description", s.description, SHP_API_DESCRIPTION_MAX, err) < 0 ||
	    validate_cluster_source(body, &s, err) < 0)
		return -SHP_E_INVAL;
	if (s.context && shd_validate_text("context", s.context, 253, err) < 0)
		return -SHP_E_INVAL;
	*ret = s;
	return 0;
}
