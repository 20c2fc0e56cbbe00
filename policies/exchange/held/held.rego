# METADATA
# title: Records held for an organization
# description: >-
#   A record of the record's types that names no resident and refers to no resident's
#   records (a supply order, a quality measure's report, a pooled specimen, a herd's
#   Observation) is about nobody whose consent could govern it. It is held for the
#   organization whose client wrote it (input.holder): that organization's clients read,
#   search and change it, under their scopes and purpose's actions; to every other caller
#   it does not exist.
package exchange.held

import rego.v1

# The request is about a record held for the requester's own organization.
own if {
	data.exchange.request.client
	input.resident == null
	is_string(input.holder)
	input.holder == input.requester.organization
}

# METADATA
# title: held
# description: The organization's own records of no resident are open to its clients.
types contains t if {
	own
	not data.exchange.request.writing
	some t in data.exchange.request.requested
	not t in data.exchange.static.directory_types
	data.exchange.request.scope_allows(t)
}

# METADATA
# title: held_write
# description: Its clients write them with a scope for the type and an action of their purpose.
types contains t if {
	own
	data.exchange.request.writing
	input.action in data.exchange.static.purposes[input.requester.purpose].actions
	some t in data.exchange.request.requested
	not t in data.exchange.static.directory_types
	data.exchange.request.scope_allows(t)
}

# METADATA
# title: held_by_requester
# description: The record names no resident and is held for the requester's organization.
# custom:
#   reason: held_by_requester
#   en: The record is about no resident and is held for your organization, which wrote it.
#   zh: 该记录不涉及任何居民，由写入它的贵机构持有。
reasons contains "held_by_requester" if count(types) > 0
