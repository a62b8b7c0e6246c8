/*
 * libFuzzer target: the YAML reader (configuration and seed files, with the line of every
 * node) and, for what it accepts, the YAML writer and the canonical JSON form.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "canon.h"
#include "error.h"
#include "yaml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct shp_error err = SHP_ERROR_INIT;
	struct shp_buf out = SHP_BUF_INIT(1 << 22);
	char hex[SHP_SHA256_HEX_LEN + 1];
	json_t *lines = NULL;
	json_t *j = shp_yaml_to_json_lines((const char *)data, size, 32, &lines, &err);

	if (!j)
		return 0;
	/* every node below the root has its line */
	if (json_is_object(lines) == 0 ||
	    (json_object_size(lines) == 0 && json_object_size(j) > 0 && json_is_object(j)))
		__builtin_trap();
	json_decref(lines);
	(void)shp_json_to_yaml(j, &out, &err);
	(void)shp_canon_sha256_hex(j, hex, &err);
	shp_buf_release(&out);
	json_decref(j);
	return 0;
}
