/*
 * Governance request types: the names the request_type enum and the API use, and what each
 * type is about (a record in the database only, or one existing VM).
 */
#include "config.h"

#include <string.h>

#include "error.h"
#include "gov.h"

static const char *const type_names[_SHD_REQ_MAX] = {
	[SHD_REQ_CREATE_SYSTEM] = "CREATE_SYSTEM",
	[SHD_REQ_DELETE_SYSTEM] = "DELETE_SYSTEM",
	[SHD_REQ_CREATE_SERVICE] = "CREATE_SERVICE",
	[SHD_REQ_DELETE_SERVICE] = "DELETE_SERVICE",
	[SHD_REQ_CREATE_VM] = "CREATE_VM",
	[SHD_REQ_MODIFY_VM] = "MODIFY_VM",
	[SHD_REQ_DELETE_VM] = "DELETE_VM",
	[SHD_REQ_START_VM] = "START_VM",
	[SHD_REQ_STOP_VM] = "STOP_VM",
	[SHD_REQ_RESTART_VM] = "RESTART_VM",
	[SHD_REQ_VNC_ACCESS] = "VNC_ACCESS",
};

const char *shd_req_type_to_string(enum shd_req_type t)
{
	if ((int)t < 0 || t >= _SHD_REQ_MAX)
		return NULL;
	return type_names[t];
}

int shd_req_type_from_string(const char *s, enum shd_req_type *ret, struct shp_error *err)
{
	for (int i = 0; s && i < _SHD_REQ_MAX; i++) {
		if (strcmp(s, type_names[i]) == 0) {
			*ret = (enum shd_req_type)i;
			return 0;
		}
	}
	shp_error_set(err, SHP_E_INVAL,
		      "unknown request type '%.64s' (CREATE_SYSTEM, DELETE_SYSTEM, CREATE_SERVICE, "
		      "DELETE_SERVICE, CREATE_VM, MODIFY_VM, DELETE_VM, START_VM, STOP_VM, "
		      "RESTART_VM, VNC_ACCESS)",
		      s ? s : "");
	shp_error_detail(err, "field", "type");
	return -SHP_E_INVAL;
}

bool shd_req_type_record_only(enum shd_req_type t)
{
	return t == SHD_REQ_CREATE_SYSTEM || t == SHD_REQ_DELETE_SYSTEM ||
	       t == SHD_REQ_CREATE_SERVICE || t == SHD_REQ_DELETE_SERVICE ||
	       t == SHD_REQ_VNC_ACCESS; /* a console grant (console-grant.c) */
}

bool shd_req_type_targets_vm(enum shd_req_type t)
{
	switch (t) {
	case SHD_REQ_MODIFY_VM:
	case SHD_REQ_DELETE_VM:
	case SHD_REQ_START_VM:
	case SHD_REQ_STOP_VM:
	case SHD_REQ_RESTART_VM:
	case SHD_REQ_VNC_ACCESS: return true;
	default: return false;
	}
}
