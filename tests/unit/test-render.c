/*
 * The VM manifest: each image source (containerDisk, dataVolume by URL and by registry, pvc),
 * the spec's overrides, overcommit and its rounding, extra disks and storage classes,
 * cloud-init (the spec's replaces the template's; syntax errors name the line), the run
 * strategy, the labels, determinism, and hostile templates, sizes and specs.
 */
#include "config.h"

#include <string.h>

#include <criterion/criterion.h>

#include "catalog.h"
#include "error.h"
#include "gov.h"

#define SPEC                                                                                       \
	"{\"name\":\"web-1\",\"namespace\":\"team-a\",\"service\":\"shop\",\"system\":\"pay\","    \
	"\"template\":\"debian-12\",\"size\":\"small\""

static json_t *parse(const char *text)
{
	json_error_t je;
	json_t *j = json_loads(text, 0, &je);

	cr_assert_not_null(j, "bad test JSON %s: %s", text, je.text);
	return j;
}

static json_t *tmpl_with(const char *image_source, const char *cloud_init)
{
	json_t *t =
		json_pack("{s:s,s:i,s:s,s:o,s:s}", "name", "debian-12", "version", 1, "status",
			  "active", "image_source", parse(image_source), "cloud_init", cloud_init);

	cr_assert_not_null(t);
	return t;
}

static const struct shd_size small = {.name = "small",
				      .cpus = 2,
				      .memory_mib = 4096,
				      .cpu_overcommit = 1,
				      .memory_overcommit = 1};

static json_t *render(const json_t *tmpl, const struct shd_size *size, const char *spec_text)
{
	json_auto_t *spec = parse(spec_text);
	struct shp_error err = SHP_ERROR_INIT;
	json_t *vm = shd_render_vm(tmpl, size, spec, &err);

	cr_assert_not_null(vm, "render failed: %s", err.msg);
	return vm;
}

/* The string at a dotted path ("spec.template.spec.domain.cpu.cores" style), or NULL. */
static const json_t *at(const json_t *j, const char *path)
{
	char buf[256], *save = NULL;

	(void)snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = strtok_r(buf, ".", &save); p && j; p = strtok_r(NULL, ".", &save)) {
		if (json_is_array(j))
			j = json_array_get(j, (size_t)strtol(p, NULL, 10));
		else
			j = json_object_get(j, p);
	}
	return j;
}

static const char *str(const json_t *j, const char *path)
{
	return json_string_value(at(j, path));
}

#define DOM "spec.template.spec.domain."
#define VOL "spec.template.spec.volumes."

Test(render, container_disk)
{
	json_auto_t *t = tmpl_with(
		"{\"type\":\"containerDisk\",\"image\":\"quay.io/containerdisks/debian:12\"}",
		"#cloud-config\npackages: [curl]\n");
	json_auto_t *vm = render(t, &small, SPEC "}");

	cr_expect_str_eq(str(vm, "apiVersion"), "kubevirt.io/v1");
	cr_expect_str_eq(str(vm, "kind"), "VirtualMachine");
	cr_expect_str_eq(str(vm, "metadata.name"), "web-1");
	cr_expect_str_eq(str(vm, "metadata.namespace"), "team-a");
	cr_expect_str_eq(str(vm, "spec.runStrategy"), "Always");
	cr_expect_null(at(vm, "spec.dataVolumeTemplates"));
	cr_expect_str_eq(str(vm, VOL "0.name"), "rootdisk");
	cr_expect_str_eq(str(vm, VOL "0.containerDisk.image"), "quay.io/containerdisks/debian:12");
	cr_expect_str_eq(str(vm, VOL "1.name"), "cloudinit");
	cr_expect_str_eq(str(vm, VOL "1.cloudInitNoCloud.userData"),
			 "#cloud-config\npackages: [curl]\n");
	cr_expect_str_eq(str(vm, DOM "devices.disks.0.name"), "rootdisk");
	cr_expect_eq(json_integer_value(at(vm, DOM "devices.disks.0.bootOrder")), 1);
	cr_expect_str_eq(str(vm, DOM "devices.disks.1.name"), "cloudinit");
	cr_expect_str_eq(str(vm, DOM "devices.interfaces.0.name"), "default");
	cr_expect_str_eq(str(vm, "spec.template.spec.networks.0.name"), "default");
	cr_expect_str_eq(json_string_value(json_object_get(at(vm, "spec.template.metadata.labels"),
							   "kubevirt.io/domain")),
			 "web-1");
	cr_expect_eq(json_integer_value(at(vm, DOM "cpu.cores")), 2);
	cr_expect_str_eq(str(vm, DOM "memory.guest"), "4096Mi");
	cr_expect_str_eq(str(vm, DOM "resources.requests.cpu"), "2");
	cr_expect_str_eq(str(vm, DOM "resources.limits.cpu"), "2");
	cr_expect_str_eq(str(vm, DOM "resources.requests.memory"), "4096Mi");
	cr_expect_str_eq(str(vm, DOM "resources.limits.memory"), "4096Mi");
}

/* Labels have dots in their keys: look them up directly. */
Test(render, labels)
{
	json_auto_t *t = tmpl_with(
		"{\"type\":\"containerDisk\",\"image\":\"quay.io/containerdisks/x:1\"}", "");
	json_auto_t *vm = render(t, &small, SPEC "}");
	const json_t *l = at(vm, "metadata.labels");

	cr_expect_str_eq(json_string_value(json_object_get(l, "app.kubernetes.io/managed-by")),
			 "shepherd");
	cr_expect_str_eq(json_string_value(json_object_get(l, "shepherd.io/system")), "pay");
	cr_expect_str_eq(json_string_value(json_object_get(l, "shepherd.io/service")), "shop");
	cr_expect_str_eq(json_string_value(json_object_get(l, "shepherd.io/template")),
			 "debian-12");
	cr_expect_str_eq(json_string_value(json_object_get(l, "shepherd.io/size")), "small");
	/* no cloud-init at all: no volume for it */
	cr_expect_eq(json_array_size(at(vm, VOL)), 1);
}

Test(render, datavolume_url_and_registry)
{
	json_auto_t *t1 = tmpl_with("{\"type\":\"dataVolume\",\"url\":\"https://example.org/"
				    "f.qcow2\",\"size\":\"20Gi\"}",
				    "");
	json_auto_t *t2 =
		tmpl_with("{\"type\":\"dataVolume\",\"registry\":\"quay.io/containerdisks/"
			  "fedora:40\",\"size\":\"30Gi\"}",
			  "");
	json_auto_t *vm1 = render(t1, &small, SPEC ",\"storage_class\":\"fast\"}");
	json_auto_t *vm2 = render(t2, &small, SPEC "}");
	const json_t *dvt = at(vm1, "spec.dataVolumeTemplates.0");

	cr_expect_str_eq(str(dvt, "metadata.name"), "web-1-rootdisk");
	cr_expect_str_eq(str(dvt, "spec.source.http.url"), "https://example.org/f.qcow2");
	cr_expect_str_eq(str(dvt, "spec.storage.resources.requests.storage"), "20Gi");
	cr_expect_str_eq(str(dvt, "spec.storage.storageClassName"), "fast");
	cr_expect_str_eq(str(vm1, VOL "0.dataVolume.name"), "web-1-rootdisk");
	dvt = at(vm2, "spec.dataVolumeTemplates.0");
	cr_expect_str_eq(str(dvt, "spec.source.registry.url"),
			 "docker://quay.io/containerdisks/fedora:40");
	cr_expect_null(at(dvt, "spec.storage.storageClassName"));
}

Test(render, pvc)
{
	json_auto_t *t = tmpl_with("{\"type\":\"pvc\",\"name\":\"golden\"}", "");
	json_auto_t *t2 =
		tmpl_with("{\"type\":\"pvc\",\"name\":\"golden\",\"namespace\":\"other\"}", "");
	json_auto_t *vm = render(t, &small, SPEC "}");
	json_auto_t *spec = parse(SPEC "}");
	struct shp_error err = SHP_ERROR_INIT;

	cr_expect_str_eq(str(vm, VOL "0.persistentVolumeClaim.claimName"), "golden");
	cr_expect_null(shd_render_vm(t2, &small, spec, &err));
	cr_expect(strstr(err.msg, "namespace 'other'"), "%s", err.msg);
}

Test(render, overrides_disks_and_cloud_init)
{
	json_auto_t *t =
		tmpl_with("{\"type\":\"containerDisk\",\"image\":\"quay.io/containerdisks/x:1\"}",
			  "#cloud-config\nhostname: tmpl\n");
	json_auto_t *vm = render(
		t, &small,
		SPEC ",\"cpus\":6,\"memory\":\"12Gi\",\"run\":false,\"storage_class\":\"std\","
		     "\"cloud_init\":\"#cloud-config\\nhostname: mine\\n\",\"disks\":[{\"name\":"
		     "\"data\",\"size\":\"100Gi\",\"storage_class\":\"fast\"},{\"name\":\"logs\","
		     "\"size\":\"5Gi\"}]}");

	cr_expect_str_eq(str(vm, "spec.runStrategy"), "Halted");
	cr_expect_eq(json_integer_value(at(vm, DOM "cpu.cores")), 6);
	cr_expect_str_eq(str(vm, DOM "memory.guest"), "12288Mi");
	cr_expect_str_eq(str(vm, DOM "devices.disks.1.name"), "data");
	cr_expect_str_eq(str(vm, DOM "devices.disks.2.name"), "logs");
	cr_expect_str_eq(str(vm, DOM "devices.disks.3.name"), "cloudinit");
	cr_expect_null(at(vm, DOM "devices.disks.1.bootOrder"));
	cr_expect_str_eq(str(vm, "spec.dataVolumeTemplates.0.metadata.name"), "web-1-data");
	cr_expect_not_null(at(vm, "spec.dataVolumeTemplates.0.spec.source.blank"));
	cr_expect_str_eq(str(vm, "spec.dataVolumeTemplates.0.spec.storage.storageClassName"),
			 "fast");
	cr_expect_str_eq(str(vm, "spec.dataVolumeTemplates.1.spec.storage.storageClassName"),
			 "std");
	cr_expect_str_eq(str(vm, "spec.dataVolumeTemplates.1.spec.storage.resources.requests."
				 "storage"),
			 "5Gi");
	cr_expect_str_eq(str(vm, VOL "3.cloudInitNoCloud.userData"),
			 "#cloud-config\nhostname: mine\n");
}

Test(render, empty_cloud_init_replaces)
{
	json_auto_t *t =
		tmpl_with("{\"type\":\"containerDisk\",\"image\":\"quay.io/containerdisks/x:1\"}",
			  "#cloud-config\nhostname: tmpl\n");
	json_auto_t *vm = render(t, &small, SPEC ",\"cloud_init\":\"\"}");

	cr_expect_eq(json_array_size(at(vm, VOL)), 1);
}

Test(render, overcommit_rounding)
{
	struct shd_size s = {.name = "dense",
			     .cpus = 3,
			     .memory_mib = 1000,
			     .cpu_overcommit = 4,
			     .memory_overcommit = 1.5};
	struct shd_size s2 = {.name = "odd",
			      .cpus = 1,
			      .memory_mib = 64,
			      .cpu_overcommit = 64,
			      .memory_overcommit = 3};
	json_auto_t *t = tmpl_with(
		"{\"type\":\"containerDisk\",\"image\":\"quay.io/containerdisks/x:1\"}", "");
	json_auto_t *vm = render(t, &s, SPEC "}");
	json_auto_t *vm2 = render(t, &s2, SPEC "}");

	/* 3000m / 4 = 750m; 1000 MiB / 1.5 = 666.67, rounded down */
	cr_expect_str_eq(str(vm, DOM "resources.requests.cpu"), "750m");
	cr_expect_str_eq(str(vm, DOM "resources.limits.cpu"), "3");
	cr_expect_str_eq(str(vm, DOM "resources.requests.memory"), "666Mi");
	cr_expect_str_eq(str(vm, DOM "resources.limits.memory"), "1000Mi");
	/* 1000m / 64 = 15.6 -> 15m; 64 / 3 -> 21Mi */
	cr_expect_str_eq(str(vm2, DOM "resources.requests.cpu"), "15m");
	cr_expect_str_eq(str(vm2, DOM "resources.requests.memory"), "21Mi");
}

Test(render, deterministic)
{
	json_auto_t *t = tmpl_with("{\"type\":\"dataVolume\",\"url\":\"https://example.org/f.img\","
				   "\"size\":\"20Gi\"}",
				   "#cloud-config\na: 1\n");
	const char *spec = SPEC ",\"disks\":[{\"name\":\"d\",\"size\":\"1Gi\"}]}";
	json_auto_t *a = render(t, &small, spec);
	json_auto_t *b = render(t, &small, spec);
	char *sa = json_dumps(a, JSON_SORT_KEYS | JSON_COMPACT);
	char *sb = json_dumps(b, JSON_SORT_KEYS | JSON_COMPACT);

	cr_expect_str_eq(sa, sb);
	free(sa);
	free(sb);
}

struct bad {
	const char *image_source;
	const char *cloud_init;
	const char *spec;
	const char *msg;
};

static const struct bad bad[] = {
	{"{\"type\":\"iso\",\"image\":\"x\"}", "", SPEC "}", "must be containerDisk"},
	{"{\"image\":\"x\"}", "", SPEC "}", "missing field 'image_source.type'"},
	{"{\"type\":\"containerDisk\"}", "", SPEC "}", "image_source.image"},
	{"{\"type\":\"containerDisk\",\"image\":\"a b\"}", "", SPEC "}", "spaces"},
	{"{\"type\":\"containerDisk\",\"image\":\"x\",\"url\":\"y\"}", "", SPEC "}",
	 "unknown field 'url'"},
	{"{\"type\":\"dataVolume\",\"size\":\"1Gi\"}", "", SPEC "}", "exactly one"},
	{"{\"type\":\"dataVolume\",\"url\":\"https://a/b\",\"registry\":\"r\",\"size\":\"1Gi\"}",
	 "", SPEC "}", "exactly one"},
	{"{\"type\":\"dataVolume\",\"url\":\"file:///etc/passwd\",\"size\":\"1Gi\"}", "", SPEC "}",
	 "http:// or https://"},
	{"{\"type\":\"dataVolume\",\"url\":\"https://a/b\"}", "", SPEC "}", "image_source.size"},
	{"{\"type\":\"dataVolume\",\"url\":\"https://a/b\",\"size\":\"20G\"}", "", SPEC "}",
	 "not a quantity"},
	{"{\"type\":\"pvc\",\"name\":\"Bad_Name\"}", "", SPEC "}", "image_source.name"},
	{"{\"type\":\"containerDisk\",\"image\":\"x\"}", "a: [\n", SPEC "}", "line"},
	{"{\"type\":\"containerDisk\",\"image\":\"x\"}", "", SPEC ",\"cpus\":0}", "cpus"},
	{"{\"type\":\"containerDisk\",\"image\":\"x\"}", "", SPEC ",\"bogus\":1}", "bogus"},
	{"{\"type\":\"containerDisk\",\"image\":\"x\"}", "",
	 SPEC ",\"cloud_init\":\"x:\\n  - a\\n b\\n\"}", "line"},
};

Test(render, hostile)
{
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_auto_t *t = tmpl_with(bad[i].image_source, bad[i].cloud_init);
		json_auto_t *spec = parse(bad[i].spec);
		struct shp_error err = SHP_ERROR_INIT;
		json_auto_t *vm = shd_render_vm(t, &small, spec, &err);

		cr_expect_null(vm, "case %zu rendered", i);
		cr_expect_eq(err.code, SHP_E_INVAL, "case %zu: code %d", i, err.code);
		cr_expect(strstr(err.msg, bad[i].msg), "case %zu: '%s' lacks '%s'", i, err.msg,
			  bad[i].msg);
	}
}

Test(render, hostile_size_and_template)
{
	json_auto_t *t = tmpl_with(
		"{\"type\":\"containerDisk\",\"image\":\"quay.io/containerdisks/x:1\"}", "");
	json_auto_t *spec = parse(SPEC "}");
	struct shd_size s = small;
	struct shp_error err = SHP_ERROR_INIT;

	s.cpu_overcommit = 0.5;
	cr_expect_null(shd_render_vm(t, &s, spec, &err));
	cr_expect(strstr(err.msg, "cpu_overcommit"), "%s", err.msg);
	s = small;
	s.memory_overcommit = 0.0 / 0.0;
	cr_expect_null(shd_render_vm(t, &s, spec, &err));
	s = small;
	s.cpus = 0;
	cr_expect_null(shd_render_vm(t, &s, spec, &err));
	cr_expect_null(shd_render_vm(t, NULL, spec, &err));
	cr_expect_null(shd_render_vm(json_null(), &small, spec, &err));
	json_object_set_new(t, "cloud_init", json_integer(3));
	cr_expect_null(shd_render_vm(t, &small, spec, &err));
}
