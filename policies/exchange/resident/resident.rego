# METADATA
# title: The resident themself
# description: >-
#   A resident signed in to the portal reads their whole record and manages their own
#   consents; never another resident's.
package exchange.resident

import rego.v1

# METADATA
# title: resident_self
# description: A resident may read their whole record and manage their own consents.
self_access if {
	input.requester.kind == "resident"
	input.resident != null
	input.requester.resident == input.resident
}

types contains t if {
	self_access
	not data.exchange.request.writing
	some t in data.exchange.request.requested
}

types contains t if {
	self_access
	data.exchange.request.writing
	some t in data.exchange.request.requested
	t in data.exchange.static.resident_writable_types
}

# METADATA
# title: resident_self
# description: The resident reads or manages their own record.
# custom:
#   reason: resident_self
#   en: The resident reads or manages their own record.
#   zh: 居民本人查看或管理自己的档案。
reasons contains "resident_self" if self_access

# METADATA
# title: other_resident
# description: A resident asked for another resident's record.
# custom:
#   reason: other_resident
#   en: A resident asked for another resident's record.
#   zh: 居民请求查看他人档案。
refusals contains "other_resident" if {
	input.requester.kind == "resident"
	not self_access
}
