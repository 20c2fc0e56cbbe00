# METADATA
# title: Registration of new residents
# description: >-
#   A clinic treating someone the exchange does not know yet may register them; it sees
#   their record only once they consent (consent).
package exchange.registration

import rego.v1

# METADATA
# title: registration
# description: A clinic may register a new resident; it sees them only once they consent.
types contains "Patient" if {
	data.exchange.request.client
	input.action == "create"
	"Patient" in data.exchange.request.requested
	count(input.consents) == 0
	input.requester.organization_kind in data.exchange.static.registering_kinds
	input.requester.purpose == "TREAT"
	data.exchange.request.scope_allows("Patient")
}

# METADATA
# title: registration
# description: A clinic registered a new resident.
# custom:
#   reason: registration
#   en: A clinic registered a new resident.
#   zh: 诊所为新居民建档。
reasons contains "registration" if count(types) > 0
