/*
 * The KubeVirt VirtualMachine manifest of a VM spec (gov.h "rendering"): the template gives the
 * root disk and the cloud-init, the size (or the spec's overrides) the CPUs and memory, the spec
 * the extra disks, storage classes and run strategy. Also the checks of a template's image
 * source and of cloud-init syntax. Pure: no database, no I/O; the same inputs give the same JSON.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "catalog.h"
#include "error.h"
#include "gov.h"
#include "json.h"
#include "provider.h"
#include "util.h"
#include "yaml.h"

#define CLOUD_INIT_DEPTH 64
#define IMAGE_MAX 512
#define URL_MAX 2048
#define BUS "virtio"

/* ---- cloud-init ---------------------------------------------------------------------------- */

/* Nothing but blank lines and comments: no document to parse. */
static bool only_comments(const char *s)
{
	for (const char *line = s; *line;) {
		const char *p = line + strspn(line, " \t\r");
		if (*p && *p != '\n' && *p != '#')
			return false;
		p = strchr(p, '\n');
		if (!p)
			break;
		line = p + 1;
	}
	return true;
}

int shd_cloud_init_check(const char *yaml, struct shp_error *err)
{
	struct shp_error yerr = SHP_ERROR_INIT;
	json_auto_t *doc = NULL;

	if (!yaml || only_comments(yaml))
		return 0;
	/* a shell script (cloud-init runs it as user data) is not YAML */
	if (strncmp(yaml, "#!", 2) == 0)
		return 0;
	doc = shp_yaml_to_json(yaml, strlen(yaml), CLOUD_INIT_DEPTH, &yerr);
	if (!doc) {
		shp_error_field(err, "cloud_init", "cloud_init: %s", yerr.msg);
		for (int i = 0; i < yerr.n_details; i++)
			shp_error_detail(err, yerr.details[i].key, "%s", yerr.details[i].value);
		return -SHP_E_INVAL;
	}
	if (!json_is_object(doc))
		return shp_error_field(
			err, "cloud_init",
			"cloud_init: a cloud-config document must be a mapping at its "
			"top (line 1)");
	return 0;
}

/* ---- image sources ------------------------------------------------------------------------- */

static const char *const container_fields[] = {"type", "image", NULL};
static const char *const datavolume_fields[] = {"type", "url", "registry", "size", NULL};
static const char *const pvc_fields[] = {"type", "name", "namespace", NULL};

/* Point err's "field" detail at image_source.KEY (shp_json_check_fields names KEY alone). */
static int under_image_source(struct shp_error *err)
{
	for (int i = 0; err && i < err->n_details; i++)
		if (strcmp(err->details[i].key, "field") == 0) {
			char key[sizeof(err->details[i].value)];

			(void)snprintf(key, sizeof(key), "%s", err->details[i].value);
			(void)snprintf(err->details[i].value, sizeof(err->details[i].value),
				       "image_source.%s", key);
		}
	return -SHP_E_INVAL;
}

/* A string without spaces or control characters, 1..max bytes. */
static int get_token(const json_t *src, const char *key, bool required, size_t max,
		     const char **ret, struct shp_error *err)
{
	const json_t *v = json_object_get(src, key);
	char field[48];
	const char *s;

	*ret = NULL;
	(void)snprintf(field, sizeof(field), "image_source.%s", key);
	if (!v && !required)
		return 0;
	if (!v)
		return shp_error_field(err, field, "missing field '%s'", field);
	if (!json_is_string(v))
		return shp_error_field(err, field, "field '%s' must be a string", field);
	s = json_string_value(v);
	if (json_string_length(v) == 0 || json_string_length(v) > max) {
		(void)shp_error_field(err, field, "field '%s' must be 1 to %zu bytes", field, max);
		shp_error_detail(err, "max_length", "%zu", max);
		return -SHP_E_INVAL;
	}
	for (size_t i = 0; i < json_string_length(v); i++)
		if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f)
			return shp_error_field(err, field,
					       "field '%s' must not contain spaces or control "
					       "characters",
					       field);
	if (!shp_utf8_is_valid(s, json_string_length(v)))
		return shp_error_field(err, field, "field '%s' is not UTF-8", field);
	*ret = s;
	return 0;
}

static int check_fields(const json_t *src, const char *const *allowed, struct shp_error *err)
{
	if (shp_json_check_fields(src, allowed, err) == 0)
		return 0;
	(void)shp_error_prefix(err, "field 'image_source'");
	return under_image_source(err);
}

static int check_datavolume(const json_t *src, struct shp_error *err)
{
	const char *url, *registry, *size;
	int64_t mib;

	if (check_fields(src, datavolume_fields, err) < 0 ||
	    get_token(src, "url", false, URL_MAX, &url, err) < 0 ||
	    get_token(src, "registry", false, URL_MAX, &registry, err) < 0 ||
	    get_token(src, "size", true, 32, &size, err) < 0)
		return -SHP_E_INVAL;
	if (!url == !registry)
		return shp_error_field(err, "image_source.url",
				       "a dataVolume image source needs exactly one of 'url' and "
				       "'registry'");
	if (url && strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
		return shp_error_field(
			err, "image_source.url",
			"field 'image_source.url' must be an http:// or https:// URL");
	if (registry && strstr(registry, "://") && strncmp(registry, "docker://", 9) != 0)
		return shp_error_field(
			err, "image_source.registry",
			"field 'image_source.registry' must be an image reference or "
			"a docker:// URL");
	if (shd_quantity_mib(size, &mib, err) < 0) {
		shp_error_detail(err, "field", "image_source.size");
		(void)shp_error_prefix(err, "field 'image_source.size'");
		return -SHP_E_INVAL;
	}
	return 0;
}

int shd_image_source_check(const json_t *src, struct shp_error *err)
{
	const char *type, *s;

	if (!json_is_object(src))
		return shp_error_field(err, "image_source",
				       "field 'image_source' must be an object");
	if (get_token(src, "type", true, 32, &type, err) < 0)
		return -SHP_E_INVAL;
	if (strcmp(type, "containerDisk") == 0)
		return check_fields(src, container_fields, err) < 0 ||
				       get_token(src, "image", true, IMAGE_MAX, &s, err) < 0
			       ? -SHP_E_INVAL
			       : 0;
	if (strcmp(type, "dataVolume") == 0)
		return check_datavolume(src, err);
	if (strcmp(type, "pvc") != 0)
		return shp_error_field(
			err, "image_source.type",
			"field 'image_source.type' must be containerDisk, dataVolume "
			"or pvc (got '%.32s')",
			type);
	if (check_fields(src, pvc_fields, err) < 0 ||
	    get_token(src, "name", true, 253, &s, err) < 0)
		return -SHP_E_INVAL;
	if (shd_provider_check_name("image_source.name", s, false, err) < 0) {
		shp_error_detail(err, "field", "image_source.name");
		return -SHP_E_INVAL;
	}
	if (get_token(src, "namespace", false, 63, &s, err) < 0)
		return -SHP_E_INVAL;
	if (s && !shp_name_is_valid(s))
		return shp_error_field(err, "image_source.namespace",
				       "field 'image_source.namespace' must be a DNS-1123 label");
	return 0;
}

/* ---- the manifest -------------------------------------------------------------------------- */

/* What the parts of the manifest are built into. */
struct vm_parts {
	const char *name;
	const char *storage_class; /* the root disk's, or NULL */
	json_t *disks;             /* devices.disks */
	json_t *volumes;
	json_t *dvts; /* dataVolumeTemplates */
};

static int nomem(struct shp_error *err)
{
	return shp_error_set(err, SHP_E_NOMEM, "out of memory rendering the VM");
}

static int add_disk(struct vm_parts *p, const char *name, json_t *volume_source,
		    const char *source_key, struct shp_error *err)
{
	json_t *disk = json_pack("{s:s,s:{s:s}}", "name", name, "disk", "bus", BUS);

	if (disk && json_array_size(p->disks) == 0)
		json_object_set_new(disk, "bootOrder", json_integer(1));
	if (!disk || json_array_append_new(p->disks, disk) < 0 ||
	    json_array_append_new(p->volumes, json_pack("{s:s,s:o}", "name", name, source_key,
							volume_source)) < 0)
		return nomem(err);
	return 0;
}

/* A dataVolumeTemplate "<vm>-<disk>" with source and size, and its volume and disk. */
static int add_datavolume(struct vm_parts *p, const char *disk, json_t *source, const char *size,
			  const char *storage_class, struct shp_error *err)
{
	char dv[160];
	json_t *storage, *t;

	(void)snprintf(dv, sizeof(dv), "%s-%s", p->name, disk);
	storage = json_pack("{s:{s:{s:s}}}", "resources", "requests", "storage", size);
	if (storage && storage_class)
		json_object_set_new(storage, "storageClassName", json_string(storage_class));
	t = json_pack("{s:{s:s},s:{s:o,s:o}}", "metadata", "name", dv, "spec", "source", source,
		      "storage", storage);
	if (!t || json_array_append_new(p->dvts, t) < 0)
		return nomem(err);
	return add_disk(p, disk, json_pack("{s:s}", "name", dv), "dataVolume", err);
}

static int add_root(struct vm_parts *p, const json_t *src, const char *ns, struct shp_error *err)
{
	const char *type = json_string_value(json_object_get(src, "type"));
	const char *url = json_string_value(json_object_get(src, "url"));
	const char *reg = json_string_value(json_object_get(src, "registry"));
	const char *pvc_ns = json_string_value(json_object_get(src, "namespace"));
	char docker[URL_MAX + 16];

	if (strcmp(type, "containerDisk") == 0)
		return add_disk(p, "rootdisk",
				json_pack("{s:s}", "image",
					  json_string_value(json_object_get(src, "image"))),
				"containerDisk", err);
	if (strcmp(type, "dataVolume") == 0) {
		if (reg)
			(void)snprintf(docker, sizeof(docker), "%s%s",
				       strstr(reg, "://") ? "" : "docker://", reg);
		return add_datavolume(p, "rootdisk",
				      url ? json_pack("{s:{s:s}}", "http", "url", url)
					  : json_pack("{s:{s:s}}", "registry", "url", docker),
				      json_string_value(json_object_get(src, "size")),
				      p->storage_class, err);
	}
	/* pvc: the claim is the root disk itself, so it must live in the VM's namespace */
	if (pvc_ns && strcmp(pvc_ns, ns) != 0)
		return shp_error_field(
			err, "namespace",
			"the template's disk is the claim '%s' of namespace '%s': the VM "
			"must be in that namespace",
			json_string_value(json_object_get(src, "name")), pvc_ns);
	return add_disk(
		p, "rootdisk",
		json_pack("{s:s}", "claimName", json_string_value(json_object_get(src, "name"))),
		"persistentVolumeClaim", err);
}

static int add_extra_disks(struct vm_parts *p, const json_t *spec, struct shp_error *err)
{
	const json_t *disks = json_object_get(spec, "disks");
	size_t i;
	json_t *d;

	json_array_foreach(disks, i, d)
	{
		const char *cls = json_string_value(json_object_get(d, "storage_class"));
		if (add_datavolume(p, json_string_value(json_object_get(d, "name")),
				   json_pack("{s:{}}", "blank"),
				   json_string_value(json_object_get(d, "size")),
				   cls ? cls : p->storage_class, err) < 0)
			return -err->code;
	}
	return 0;
}

/* The spec's cloud-init replaces the template's; an empty text means none. */
static int add_cloud_init(struct vm_parts *p, const json_t *tmpl, const json_t *spec,
			  struct shp_error *err)
{
	const json_t *ci = json_object_get(spec, "cloud_init");
	const char *text;

	if (!ci)
		ci = json_object_get(tmpl, "cloud_init");
	if (ci && !json_is_string(ci))
		return shp_error_field(err, "cloud_init",
				       "the template's cloud_init must be a string");
	text = json_string_value(ci);
	if (!text || !*text)
		return 0;
	if (shd_cloud_init_check(text, err) < 0)
		return -SHP_E_INVAL;
	return add_disk(p, "cloudinit", json_pack("{s:s}", "userData", text), "cloudInitNoCloud",
			err);
}

/* Hundredths of an overcommit ratio in [1, max]. */
static int ratio(double r, int max, const char *field, int64_t *ret, struct shp_error *err)
{
	if (!(r >= 1.0 && r <= max)) { /* NaN too */
		(void)shp_error_field(err, field, "the size's %s must be from 1 to %d", field, max);
		shp_error_detail(err, "min", "1");
		shp_error_detail(err, "max", "%d", max);
		return -SHP_E_INVAL;
	}
	*ret = (int64_t)(r * 100.0 + 0.5);
	return 0;
}

/*
 * CPU cores and guest memory are the limits; requests are limits / overcommit, rounded down to
 * a whole millicore and a whole MiB (at least 1), computed on the ratio's hundredths so the
 * result is exact and the same everywhere.
 */
static int domain(const struct shd_size *size, int cpus, int64_t mib, json_t **ret,
		  struct shp_error *err)
{
	int64_t cpu_oc = 100, mem_oc = 100, milli, req_mib;
	char cpu_req[32], cpu_lim[32], mem_req[32], mem_lim[32];

	if (ratio(size->cpu_overcommit, 64, "cpu_overcommit", &cpu_oc, err) < 0 ||
	    ratio(size->memory_overcommit, 4, "memory_overcommit", &mem_oc, err) < 0)
		return -SHP_E_INVAL;
	milli = (int64_t)cpus * 1000 * 100 / cpu_oc;
	req_mib = mib * 100 / mem_oc;
	if (milli < 1)
		milli = 1;
	if (req_mib < 1)
		req_mib = 1;
	if (milli % 1000 == 0)
		(void)snprintf(cpu_req, sizeof(cpu_req), "%lld", (long long)(milli / 1000));
	else
		(void)snprintf(cpu_req, sizeof(cpu_req), "%lldm", (long long)milli);
	(void)snprintf(cpu_lim, sizeof(cpu_lim), "%d", cpus);
	(void)snprintf(mem_req, sizeof(mem_req), "%lldMi", (long long)req_mib);
	(void)snprintf(mem_lim, sizeof(mem_lim), "%lldMi", (long long)mib);
	*ret = json_pack("{s:{s:i,s:i,s:i},s:{s:s},s:{s:{s:s,s:s},s:{s:s,s:s}}}", "cpu", "sockets",
			 1, "cores", cpus, "threads", 1, "memory", "guest", mem_lim, "resources",
			 "requests", "cpu", cpu_req, "memory", mem_req, "limits", "cpu", cpu_lim,
			 "memory", mem_lim);
	return *ret ? 0 : nomem(err);
}

static json_t *labels(const json_t *spec)
{
	static const struct {
		const char *label, *field;
	} map[] = {
		{"shepherd.io/system", "system"},
		{"shepherd.io/service", "service"},
		{"shepherd.io/template", "template"},
		{"shepherd.io/size", "size"},
	};
	json_t *l = json_pack("{s:s}", SHD_LABEL_MANAGED_BY, "shepherd");

	for (size_t i = 0; l && i < SHP_ARRAY_SIZE(map); i++) {
		const json_t *v = json_object_get(spec, map[i].field);
		if (v)
			json_object_set_new(l, map[i].label, json_copy((json_t *)v));
	}
	return l;
}

static int check_inputs(const json_t *tmpl, const struct shd_size *size, const json_t *spec,
			struct shp_error *err)
{
	if (shd_spec_validate(spec, err) < 0)
		return -SHP_E_INVAL;
	if (!json_is_object(tmpl) || !size)
		return shp_error_set(err, SHP_E_INVAL, "rendering needs a template and a size");
	if (shd_image_source_check(json_object_get(tmpl, "image_source"), err) < 0) {
		(void)shp_error_prefix(err, "template '%.63s'",
				       json_string_value(json_object_get(tmpl, "name")) ?: "?");
		return -SHP_E_INVAL;
	}
	return 0;
}

/* The VM object around its template spec (takes tspec, and dvts when it is not empty). */
static json_t *vm_object(const json_t *spec, json_t *tspec, json_t *dvts)
{
	const char *name = json_string_value(json_object_get(spec, "name"));
	const json_t *run = json_object_get(spec, "run");
	json_t *vspec;

	vspec = json_pack("{s:s,s:{s:{s:{s:s}},s:o}}", "runStrategy",
			  !run || json_is_true(run) ? "Always" : "Halted", "template", "metadata",
			  "labels", "kubevirt.io/domain", name, "spec", tspec);
	if (vspec && json_array_size(dvts) > 0)
		json_object_set(vspec, "dataVolumeTemplates", dvts);
	return json_pack("{s:s,s:s,s:{s:s,s:s,s:o},s:o}", "apiVersion", "kubevirt.io/v1", "kind",
			 "VirtualMachine", "metadata", "name", name, "namespace",
			 json_string_value(json_object_get(spec, "namespace")), "labels",
			 labels(spec), "spec", vspec);
}

json_t *shd_render_vm(const json_t *tmpl, const struct shd_size *size, const json_t *spec,
		      struct shp_error *err)
{
	json_auto_t *disks = json_array(), *volumes = json_array(), *dvts = json_array();
	struct vm_parts p = {.disks = disks, .volumes = volumes, .dvts = dvts};
	json_t *dom = NULL, *tspec, *vm;
	int64_t mib;
	int cpus;

	if (check_inputs(tmpl, size, spec, err) < 0 ||
	    shd_spec_resources(spec, size, &cpus, &mib, err) < 0)
		return NULL;
	if (!disks || !volumes || !dvts)
		return nomem(err), NULL;
	p.name = json_string_value(json_object_get(spec, "name"));
	p.storage_class = json_string_value(json_object_get(spec, "storage_class"));
	if (add_root(&p, json_object_get(tmpl, "image_source"),
		     json_string_value(json_object_get(spec, "namespace")), err) < 0 ||
	    add_extra_disks(&p, spec, err) < 0 || add_cloud_init(&p, tmpl, spec, err) < 0)
		return NULL;
	if (domain(size, cpus, mib, &dom, err) < 0)
		return NULL;
	json_object_set_new(dom, "devices",
			    json_pack("{s:O,s:[{s:s,s:{}}]}", "disks", disks, "interfaces", "name",
				      "default", "masquerade"));
	tspec = json_pack("{s:o,s:[{s:s,s:{}}],s:O}", "domain", dom, "networks", "name", "default",
			  "pod", "volumes", volumes);
	vm = tspec ? vm_object(spec, tspec, dvts) : NULL;
	if (!vm)
		return nomem(err), NULL;
	return vm;
}
