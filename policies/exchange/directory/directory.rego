# METADATA
# title: The community directory
# description: >-
#   The directory of the community's organizations (no resident's data) is readable by
#   every registered client.
package exchange.directory

import rego.v1

# METADATA
# title: directory
# description: The community directory (organizations) is readable by every client.
types contains t if {
	data.exchange.request.client
	input.resident == null
	not data.exchange.request.writing
	some t in data.exchange.request.requested
	t in data.exchange.static.directory_types
	data.exchange.request.scope_allows(t)
}

# METADATA
# title: directory_write
# description: >-
#   A client changes the directory only with a scope that names the directory type itself
#   (system/Practitioner.cu): system/*.cruds, a clinic's usual scope, opens residents'
#   records under their consent, never the shared directory.
types contains t if {
	data.exchange.request.client
	input.resident == null
	data.exchange.request.writing
	input.action in data.exchange.purposes.rules.actions
	some t in data.exchange.request.requested
	t in data.exchange.static.directory_types
	some s in input.requester.scopes
	s.resource_type == t
	contains(s.interactions, data.exchange.request.interaction)
}

# METADATA
# title: directory
# description: The community directory is open to every registered organization.
# custom:
#   reason: directory
#   en: The community directory is open to every registered organization.
#   zh: 社区机构名录向所有登记机构开放。
reasons contains "directory" if count(types) > 0
