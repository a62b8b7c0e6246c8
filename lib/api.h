/*
 * The wire contract between shepherd (CLI) and shepherdd: API version, routes, headers, field
 * names and the shapes of list and error bodies. Any change to what crosses the wire bumps
 * SHP_API_VERSION. docs/api.yaml (OpenAPI 3) describes the same contract for other clients.
 */
#pragma once

#define SHP_API_VERSION 1
#define SHP_API_PREFIX "/api/v1"

/* Headers. */
#define SHP_HDR_REQUEST_ID "X-Request-Id"
#define SHP_HDR_IDEMPOTENCY_KEY "Idempotency-Key"
#define SHP_HDR_API_VERSION "X-Shepherd-Api-Version"
#define SHP_HDR_RETRY_AFTER "Retry-After"

/* Routes (relative to the server root). */
#define SHP_ROUTE_HEALTH_LIVE "/health/live"
#define SHP_ROUTE_HEALTH_READY "/health/ready"
#define SHP_ROUTE_METRICS "/metrics"
#define SHP_ROUTE_VERSION SHP_API_PREFIX "/version"
#define SHP_ROUTE_STATUS SHP_API_PREFIX "/status"
#define SHP_ROUTE_WHOAMI SHP_API_PREFIX "/whoami"
#define SHP_ROUTE_TOKENS SHP_API_PREFIX "/tokens"
#define SHP_ROUTE_NAMESPACES SHP_API_PREFIX "/namespaces"
#define SHP_ROUTE_CLUSTERS SHP_API_PREFIX "/clusters"
#define SHP_ROUTE_AUDIT SHP_API_PREFIX "/audit"
#define SHP_ROUTE_JOBS SHP_API_PREFIX "/jobs"
#define SHP_ROUTE_QUEUES SHP_API_PREFIX "/queues"
#define SHP_ROUTE_TASKS SHP_API_PREFIX "/tasks"                /* executions of plans */
#define SHP_ROUTE_EXEC_FLAGS SHP_API_PREFIX "/execution/flags" /* the execution feature flag */
#define SHP_ROUTE_TENANTS SHP_API_PREFIX "/tenants"            /* tenant members */

/* The catalogue: templates (and their versions) and instance sizes. */
#define SHP_ROUTE_TEMPLATES SHP_API_PREFIX "/templates"
#define SHP_ROUTE_SIZES SHP_API_PREFIX "/sizes"

/* Platform roles (role bindings) and principal mappings. */
#define SHP_ROUTE_ROLEBINDINGS SHP_API_PREFIX "/rolebindings"
#define SHP_ROUTE_RBAC_MAPPINGS SHP_API_PREFIX "/rbac/mappings"

/* Approvals: the workbench and decisions; modifications under the admin prefix. */
#define SHP_ROUTE_APPROVALS SHP_API_PREFIX "/approvals"
#define SHP_ROUTE_ADMIN_APPROVALS SHP_API_PREFIX "/admin/approvals"

/* Governance requests: VMs, systems, services, my requests, policies. */
#define SHP_ROUTE_VMS SHP_API_PREFIX "/vms"
#define SHP_ROUTE_SYSTEMS SHP_API_PREFIX "/systems"
#define SHP_ROUTE_SERVICES SHP_API_PREFIX "/services"
#define SHP_ROUTE_REQUESTS SHP_API_PREFIX "/requests"
#define SHP_ROUTE_POLICIES SHP_API_PREFIX "/policies"
#define SHP_ROUTE_APPROVALS_BASE SHP_API_PREFIX "/approvals" /* POST {id}/cancel */

/* The caller's notification inbox. */
#define SHP_ROUTE_NOTIFICATIONS SHP_API_PREFIX "/notifications"

/* Server-Sent Events (GET /api/v1/tasks/{id}/stream). */
#define SHP_HDR_LAST_EVENT_ID "Last-Event-ID"
#define SHP_SSE_CONTENT_TYPE "text/event-stream"
#define SHP_SSE_EVENT_END "end" /* the last frame: data is the finished task */
/*
 * The same events over a WebSocket (the same GET upgraded, this subprotocol): one text frame per
 * event, {"event": TYPE, "id": N, "data": EVENT}, then {"event": "end", "data": TASK}.
 */
#define SHP_WS_PROTOCOL_EVENTS "events.shepherd.io"

/*
 * Bodies.
 *  - Success with one object: the object itself.
 *  - Success with a list: {"items": [...], "next_cursor": "<opaque>" | null}.
 *    Query: ?limit=N (1..SHP_API_PAGE_MAX, default SHP_API_PAGE_DEFAULT) &cursor=<opaque>.
 *  - Failure: {"error": {"code": "NOT_FOUND", "message": "...", "details": {...},
 *                        "request_id": "..."}}
 */
#define SHP_API_FIELD_ITEMS "items"
#define SHP_API_FIELD_NEXT_CURSOR "next_cursor"
#define SHP_API_FIELD_ERROR "error"
#define SHP_API_FIELD_CODE "code"
#define SHP_API_FIELD_MESSAGE "message"
#define SHP_API_FIELD_DETAILS "details"
#define SHP_API_FIELD_REQUEST_ID "request_id"

#define SHP_API_PAGE_DEFAULT 50
#define SHP_API_PAGE_MAX 500

/* Environments a namespace or cluster belongs to. */
#define SHP_ENV_TEST "test"
#define SHP_ENV_PROD "prod"

/* Limits that both sides know. */
#define SHP_API_NAME_MAX 63
#define SHP_API_DESCRIPTION_MAX 1024
#define SHP_API_URL_MAX 2048
#define SHP_API_JSON_DEPTH_MAX 32
