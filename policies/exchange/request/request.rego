# METADATA
# title: The request
# description: >-
#   What is asked, by whom and when: facts of the input (input.schema.json in the folder
#   above) that every concern reads, what the client's SMART scopes cover, and whether a
#   moment falls in a period. The requester itself is input.requester.
package exchange.request

import rego.v1

requested contains t if some t in input.resource_types

writing if input.action in {"create", "update", "delete"}

# The SMART interaction letter an action needs.
interaction := {
	"read": "r", "search": "s", "create": "c", "update": "u", "delete": "d",
	"reidentify": "r",
	"derive": "r",
}[input.action]

client if input.requester.kind == "client"

# Whether one of the client's scopes covers this action on type t.
scope_allows(t) if {
	some s in input.requester.scopes
	s.resource_type in {t, "*"}
	contains(s.interactions, interaction)
}

# Whether the moment of the request falls in a period (open ends are null).
within(p) if {
	starts_ok(p)
	ends_ok(p)
}

starts_ok(p) if p.start == null

starts_ok(p) if p.start <= input.now

ends_ok(p) if p.end == null

ends_ok(p) if input.now < p.end

# METADATA
# title: unknown_requester
# description: The requester could not be identified.
# custom:
#   reason: unknown_requester
#   en: The requester could not be identified.
#   zh: 无法识别请求方。
reasons contains "unknown_requester" if not input.requester.kind in {"client", "resident", "proxy"}

# METADATA
# title: scope_missing
# description: The organization's access scope does not cover this data.
# custom:
#   reason: scope_missing
#   en: The organization's access scope does not cover this data.
#   zh: 该机构的访问范围不包括这类数据。
refusals contains "scope_missing" if {
	client
	some t in requested
	not scope_allows(t)
}
